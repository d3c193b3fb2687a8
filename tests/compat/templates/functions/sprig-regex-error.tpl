{{ sprig_mustRegexMatch "(" "abc" }}
