{{ mergeMap (sprig_dict "a" "1" "n" (sprig_dict "x" "1")) (sprig_dict "a" "2" "b" "3" "n" (sprig_dict "x" "2" "y" "2")) | toJSON }}
