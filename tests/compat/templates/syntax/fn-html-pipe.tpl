{{ with secret "secret/data/golden" }}{{ .Data.data.quote | html }}{{ end }}
