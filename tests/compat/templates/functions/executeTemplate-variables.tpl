{{ define "v" }}{{ $ }}{{ end }}{{ $x := 1 }}{{ executeTemplate "v" "dollar" }}
