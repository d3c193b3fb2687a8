{{ sprig_semverCompare ">1.2 <<1.3" "1.2.5" }}
