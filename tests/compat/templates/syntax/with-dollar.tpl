{{ with secret "secret/data/golden" }}{{ with .Data.data.labels }}{{ .a }} {{ $.Data.data.name }}{{ end }}{{ end }}
