{{ $x := "outer" -}}
{{ $x }}
{{ with secret "secret/data/golden" -}}
{{ $count := 0 -}}
{{ $last := "" -}}
{{ range $i, $s := .Data.data.servers -}}
{{ $count = $i -}}
{{ $last = $s -}}
{{ $x := "shadowed in range" -}}
{{ $i }} {{ $s }} {{ $x }}
{{ end -}}
count={{ $count }} last={{ $last }} x={{ $x }}
{{ $x = "reassigned" -}}
{{ if true }}{{ $x = "set in if" }}{{ $y := "local" }}{{ $y }}{{ end }}
x={{ $x }}
{{ $found := false -}}
{{ range .Data.data.servers }}{{ if eq . "bravo" }}{{ $found = true }}{{ end }}{{ end -}}
found={{ $found }}
{{ range $k, $v := .Data.data.labels }}{{ $x = $k }}{{ end -}}
x after range={{ $x }}
{{ $m := .Data.data.nested }}{{ $m.mid.deep }} {{ $m.zeta }} {{ $.Data.data.name }}
{{ $s := .Data.data.servers }}{{ $s }} {{ len $s }}
{{ $p := (print "a" "b") }}{{ $p }}
{{- end }}
{{ $ }}
{{ $x }}
{{ $n := 5 }}{{ $n }}{{ $f := 2.5 }}{{ $f }}{{ $b := true }}{{ $b }}
