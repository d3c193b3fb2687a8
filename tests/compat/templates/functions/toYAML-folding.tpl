{{ $w := "word word word word word word word word word word word word word word word word word word word word" }}{{ sprig_dict "a" $w "n" (sprig_dict "deeper" $w "list" (sprig_list $w (sprig_dict "k" $w))) "q" (print "#" $w) "sp" "word  word word word word word word word word word word word word word word word word word  word  word" | toYAML }}
---
{{ $w | toYAML }}
