{{ with secret "secret/data/golden" }}{{ call .Data.data.name }}{{ end }}
