{{ toUpper "a" "b" }}
