{{ with secret "secret/golden" }}{{ .Data.data.name }} {{ .Data.data.count }}{{ end }}
