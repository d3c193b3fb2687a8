{{ sprig_split "$" "foo$bar$baz" }} {{ (sprig_split "$" "foo$bar")._1 }}|{{ sprig_splitn "$" 2 "foo$bar$baz" }}|{{ sprig_splitList "," "a,b,,c" }}|{{ sprig_splitList "," "" | len }}
{{ sprig_join "+" (sprig_list 1 "a" nil 2.5) }}|{{ sprig_join "+" "x" }}|{{ sprig_sortAlpha (sprig_list "b" 10 "a" "B") }}|{{ sprig_toStrings (sprig_list 1 true nil "x") }}
{{ sprig_seq 5 }}|{{ sprig_seq -3 }}|{{ sprig_seq 0 }}|{{ sprig_seq 2 5 }}|{{ sprig_seq 5 2 }}|{{ sprig_seq 0 2 10 }}|{{ sprig_seq 10 -3 0 }}|{{ sprig_seq 1 2 }}|{{ sprig_seq }}
