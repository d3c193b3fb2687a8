{{ sprig_mustToDate "Jan 2, 2006" "Jun 1 2021" }}
