{{ with secret "secret/data/golden" }}{{ range $v := .Data.data.labels }}{{ $v }},{{ end }}{{ end }}
