{{ sprig_mustToDate "2006-01-02" "2023-02-29" }}
