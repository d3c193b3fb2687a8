{{ printf "%+v|%#v|%#v|%#v|%#v|%#v" 5 "a\"b" (sprig_list 1 "x" nil) true 1.5 nil }}
{{ printf "%+v|%#v" (sprig_dict "k" "v" "n" nil) (sprig_dict "k" (sprig_list "a") "m" (sprig_dict)) }}
{{ printf "%+d|%+v|%+q|%#q" 5 -3 "é" "x" }}
