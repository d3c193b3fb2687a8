{{ range $i, $j := 3 }}{{ $i }}{{ end }}
