{{ with secret "secret/data/golden" }}{{ index .Data.data.labels 1 }}{{ end }}
