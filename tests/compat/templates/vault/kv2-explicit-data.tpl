{{ with secret "secret/data/golden" }}{{ .Data.data.name }}{{ end }}
