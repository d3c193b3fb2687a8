{{ printf "%[2]s%[1]s|%*d|%.*f" "a" "b" 4 7 1 2.25 }}
{{ printf "%*d|%-*d|%.*f|%[3]*.[2]*[1]f|%[5]d" 4 7 3 1 1 2.25 9 }}
{{ printf "%[0]d|%[9]d|%[x|%!" 1 }}
{{ printf "%" }}|{{ printf "%-" }}|{{ printf "%5" }}
{{ printf "%x|%X|%o|%b|%d" -255 -255 -8 -5 -0 }}
{{ printf "%08.3e|%+.3g|%-010.3e|% 8.2f|%+08d|% 05d" 1.5 -0.0 1.5 2.5 42 42 }}
{{ printf "%c|%q|%U|%c" -1 -1 -1 128512 }}
{{ printf "%6.2f%%|%.3s|%.10s|%5.2s|%.0s|" 99.5 "héllo" "hi" "héllo" "x" }}
{{ printf "%g|%g|%g|%g|%g|%g|%G" 100000.0 1000000.0 0.0001 0.00001 1.0 123456789.123 1e-10 }}
{{ printf "%.1g|%.2g|%.10g|%.0g|%.3g|%.3g" 0.15 125.0 3.14 7.0 0.0001234 99999.0 }}
{{ printf "%e|%.0e|%E|%.3e" 0.0 5.0 1e100 -123456.0 }}
{{ printf "%f|%.3f|%f|%.1f" 1e20 -0.0005 0.000001 0.05 }}
{{ printf "%v|%v|%v|%v|%v" 1e20 1e21 123456789.0 0.000001 100.0 }}
{{ printf "%5v|%-5v|%05v|%5v" 1 true "s" 1.5 }}
{{ printf "%q|%q|%q" "\x00\x7f" "\u00a0\u2028" "日本" }}
{{ printf "%+q|%#q|%#q|%#+q" "日本" "a\tb" "a\nb" "x" }}
{{ printf "%x|% x|%#x|% #x|%X|%.2x|%8x|%-8x|" "héllo" "abc" "abc" "abc" "abc" "abcd" "ab" "ab" }}
{{ printf "%t|%d|%s" 1 true false }}
{{ printf "%d%%" 50 }} {{ printf "100%%" }} {{ printf "%5%|%-5%|" }}
{{ printf "%v %v %v" "x" }}
{{ printf "%s" "a" "b" 3 nil }}
{{ print "" "" 1 "" 2 }}|{{ print 1 "" 2 }}|{{ print nil nil }}|{{ print true false }}
{{ println "a" "b" }}{{ println nil 1.5 }}
{{ with secret "secret/data/golden" -}}
{{ printf "%x|%X|%5d|%-4s|%05v" .Data.data.servers .Data.data.labels .Data.data.matrix .Data.data.servers .Data.data.servers }}
{{ printf "%v" .Data.data.hosts }}|{{ printf "%s" .Data.data.nested }}|{{ printf "%d" .Data.data.enabled }}
{{ printf "%T|%T|%T" .Data.data.matrix .Data.data.enabled .Data.data.name }}
{{ printf "%s" .Data.data.empty_list }}|{{ printf "%v" .Data.data.empty_map }}|{{ printf "%q" .Data.data.empty }}|{{ printf "%5s|" .Data.data.empty }}
{{ index .Data.data.nested "missing" }}|{{ printf "%v|%s|%d" (index .Data.data.nested "missing") (index .Data.data.nested "missing") (index .Data.data.nested "missing") }}
{{- end }}
{{ $a := "x" }}{{ $b := $a }}{{ $a = "y" }}{{ $a }}{{ $b }}
{{ if eq 1 1 2 }}{{ end }}{{ "a" | printf "%s%s" "b" | printf "[%s]" }}
{{- /* comment at the end */ -}}
