{{ with secret "secret/data/golden" }}{{ with .Data.data.nested }}{{ .alpha }} {{ .mid.deep }}{{ end }}{{ with .Data.data.empty }}x{{ else }}empty{{ end }}{{ end }}
