{{ mergeMapWithOverride (sprig_dict "a" "1" "n" (sprig_dict "x" "1")) (sprig_dict "a" "2" "b" "3" "n" (sprig_dict "x" "2" "y" "2")) | toJSON }}
{{ mergeMapWithOverride (sprig_dict "a" "1" "b" "" "c" 0) (sprig_dict "a" "" "b" "2" "c" 5 "d" "") | toJSON }} {{ mergeMap (sprig_dict "a" "" "b" 0) (sprig_dict "a" "x" "b" 3) | toJSON }}
