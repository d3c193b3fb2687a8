{{ with "{\"big\": 12345678901234567890, \"small\": 1e-7, \"int\": 42}" | parseJSON }}{{ .big }} {{ .small }} {{ .int }} {{ .int | add 1 }}{{ end }}
