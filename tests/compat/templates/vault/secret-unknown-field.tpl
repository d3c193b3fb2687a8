{{ with secret "secret/data/golden" }}{{ .certificate }}{{ end }}
