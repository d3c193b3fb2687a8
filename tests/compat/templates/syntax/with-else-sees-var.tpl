{{ with $x := 0 }}a{{ else }}{{ $x }}{{ end }} {{ if $x := 0 }}{{ else if $y := 1 }}{{ $x }}{{ $y }}{{ end }}
