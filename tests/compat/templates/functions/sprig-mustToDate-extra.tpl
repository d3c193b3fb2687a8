{{ sprig_mustToDate "2006-01-02" "2021-06-01x" }}
