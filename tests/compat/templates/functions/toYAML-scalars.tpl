{{ sprig_dict "name" "web" "on" "yes" "empty" "" "k" "v: x" "multi" "a\nb" "trail" "a\n" "key10" 10 "key9" 9 "list" (sprig_list "a" 1 2.5 true nil) "num" "123" "float" "1.5" "hash" "a #b" "dash" "- x" "space" " lead" "colon" "a:b" "tilde" "~" "star" "*x" "quote" "it's" "em" (sprig_dict) "el" (sprig_list) | toYAML }}
---
{{ "plain" | toYAML }}
---
{{ sprig_list (sprig_list 1 2) (sprig_dict "a" 1 "b" 2) | toYAML }}
