{{ $i := 9 }}{{ range $i = 2 }}{{ end }}{{ $i }}
