{{ with secret "secret/data/golden" }}{{ .Data.data.name 1 }}{{ end }}
