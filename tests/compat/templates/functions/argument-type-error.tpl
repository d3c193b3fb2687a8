{{ 1 | toUpper }}
