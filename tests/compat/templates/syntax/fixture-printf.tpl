{{ printf "%s|%v|%q|%x|%X|% x|%#x" "hello" "hello" "hello" "hi" "hi" "hi" "hi" }}
{{ printf "[%5s][%-5s][%05s][%.2s][%5.1s][%-8q]" "ab" "ab" "ab" "abc" "xyz" "q" }}
{{ printf "%d|%5d|%-5d|%05d|%+d|% d|%x|%X|%o|%O|%b|%#o|%#b|%#X" 42 42 42 -42 42 42 255 255 8 8 5 8 5 255 }}
{{ printf "%c|%q|%U|%#U|%.3d|%8.3d|%-05d|%+05d" 65 97 8364 8364 7 7 3 3 }}
{{ printf "%f|%.2f|%.0f|%8.3f|%-8.2f|%08.3f|%+.1f|% .1f" 3.14159 2.675 2.5 3.14159 2.5 -3.14159 1.25 1.25 }}
{{ printf "%e|%E|%.2e|%g|%G|%.3g|%g|%g|%g|%g" 1234.5678 1234.5678 0.000123 0.000012 1e-7 1234.0 100000.0 1000000.0 123456789.0 0.1 }}
{{ printf "%v %v %v %v %v %v" 1.0 2.5 1e21 1e20 -0.0 1e-5 }}
{{ printf "%t|%v|%5t|%v" true false true nil }}
{{ printf "%d %d" 1 }}|{{ printf "%d" 1 2 "x" }}|{{ printf "%s" nil }}|{{ printf "%z" 3 }}|{{ printf "%d" "x" }}|{{ printf "%s" 3.5 }}
{{ printf "%%|%5.1f%%|%3c|%-3c|" 99.44 120 120 }}
{{ printf "%[2]s %[1]s|%[3]d|%*d|%-*d|%.*f" "a" "b" 7 5 42 5 42 2 3.14159 }}
{{ printf "%T %T %T %T %T" 1 1.5 "s" true nil }}
{{ printf "%q" "tab\there \"quoted\" back\\slash é \u0001 \U0001F600" }}
{{ printf "%+q|%#q|%#q" "é" "raw" "has`tick" }}
{{ printf "%v|%s|%d" "é" 'x' 'x' }}
{{ with secret "secret/data/golden" -}}
{{ printf "%v|%s|%q|%d" .Data.data.servers .Data.data.servers .Data.data.servers .Data.data.servers }}
{{ printf "%v" .Data.data.labels }}|{{ printf "%6v" .Data.data.labels }}|{{ printf "%q" .Data.data.matrix }}
{{ printf "%s=%s" .Data.data.name .Data.data.padded }}|{{ printf "%q" .Data.data.quote }}
{{- end }}
{{ printf "no args" }}|{{ printf "" }}|{{ "piped" | printf "%s!" }}|{{ 3 | printf "%d-%d" 2 }}
