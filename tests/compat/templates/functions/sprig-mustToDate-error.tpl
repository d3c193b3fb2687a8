{{ sprig_mustToDate "2006-01-02" "2017-13-01" }}
