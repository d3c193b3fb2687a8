{{ with secret "secret/data/golden" }}{{ .Data.data.nope.deeper }}{{ end }}
