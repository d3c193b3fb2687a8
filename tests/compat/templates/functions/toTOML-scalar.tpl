{{ "x" | toTOML }}|{{ 1 | toTOML }}|{{ sprig_list 1 "a" | toTOML }}
