{{ sprig_dict "a" 1 "s" "x\"y" "t" (sprig_dict "f" 2.0 "u" (sprig_dict "b" true)) "l" (sprig_list 1 2) "key with space" "v" | toTOML }}
