{{ sprig_semverCompare ">1.2" "1.2.3-01" }}
