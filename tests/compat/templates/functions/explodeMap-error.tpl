{{ sprig_dict "a" "1" "a/b" "2" | explodeMap }}
