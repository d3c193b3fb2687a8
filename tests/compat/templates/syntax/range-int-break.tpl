{{ range $i := 10 }}{{ if eq $i 4 }}{{ break }}{{ end }}{{ $i }}{{ end }}
