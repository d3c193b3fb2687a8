{{ with secret "secret/data/golden" }}{{ range .Data.data.matrix }}{{ range . }}{{ . }}{{ end }}|{{ end }}{{ end }}
