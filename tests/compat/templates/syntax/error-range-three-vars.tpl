{{ range $a, $b, $c := 3 }}{{ end }}
