{{ with secret "secret/data/golden" }}{{ .Data.data | toTOML }}{{ end }}
