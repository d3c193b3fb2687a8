{{ sprig_semverCompare "^1.2.0" "not-a-version" }}
