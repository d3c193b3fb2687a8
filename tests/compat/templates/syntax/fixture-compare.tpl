{{ with secret "secret/data/golden" -}}
{{ $d := .Data.data -}}
eq: {{ eq 1 1 }} {{ eq 1 2 }} {{ eq "a" "b" "c" "a" }} {{ eq "a" "b" "c" }} {{ eq $d.name "x" "golden" }} {{ eq 1.5 1.5 }} {{ eq true true }}
eq missing: {{ eq $d.missing "x" }} {{ eq $d.missing $d.nothing }}
ne: {{ ne 1 2 }} {{ ne "a" "a" }} {{ ne $d.name "golden" }}
lt/le/gt/ge int: {{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 2 2 }} {{ lt -3 -2 }}
lt/le/gt/ge float: {{ lt 1.5 2.5 }} {{ le 2.5 2.5 }} {{ gt 0.1 0.01 }} {{ ge 1e3 999.9 }}
lt/le/gt/ge string: {{ lt "abc" "abd" }} {{ le "b" "a" }} {{ gt "b" "a" }} {{ ge "B" "a" }} {{ lt "" "a" }}
and: [{{ and 1 0 "x" }}] [{{ and 1 2 }}] [{{ and "a" "" "b" }}] [{{ and $d.name $d.enabled }}] [{{ and $d.enabled $d.servers }}]
or: [{{ or 0 "" "z" }}] [{{ or 0 "" }}] [{{ or $d.empty $d.name }}] [{{ or $d.missing $d.empty_list }}] [{{ or 0 $d.labels }}]
not: {{ not 0 }} {{ not 1 }} {{ not "" }} {{ not $d.servers }} {{ not $d.empty_map }} {{ not $d.missing }}
piped: {{ 0 | and 1 }} {{ 0 | or 1 }} {{ "" | or "default" }} {{ $d.name | eq "golden" }} {{ 2 | lt 1 }}
short-circuit: {{ and false (index $d.servers 99) }} {{ or true (index $d.servers 99) }}
len: {{ len $d.servers }} {{ len $d.labels }} {{ len $d.name }} {{ len "héllo" }} {{ len $d.empty_list }} {{ len "" }}
nested: {{ if and (eq (len $d.servers) 3) (not $d.disabled) (or $d.missing $d.enabled) }}all true{{ end }}
{{ end -}}
