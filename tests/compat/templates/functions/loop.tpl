{{ range loop 3 }}{{ . }} {{ end }}
{{ range $i := loop 5 8 }}{{ $i }},{{ end }}
{{ range loop "2" "4" }}{{ . }}{{ end }}
{{ range loop 3 1 }}never{{ end }}
