{{ sprig_dict "a/b" "1" "a/c/d" "2" "e" "3" | explodeMap | toJSON }}
