{{ with secret "secret/data/golden" }}{{ index .Data.data.labels nil }}{{ end }}
