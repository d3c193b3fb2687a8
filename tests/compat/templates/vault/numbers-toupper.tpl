{{ with secret "secret/data/golden" }}{{ .Data.data.count | toUpper }}{{ end }}
