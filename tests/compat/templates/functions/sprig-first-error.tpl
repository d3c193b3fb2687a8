{{ sprig_first "abc" }}
