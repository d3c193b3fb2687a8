{{ with secret "secret/data/golden" }}{{ range .Data.data.servers }}[{{ . }}]{{ end }}{{ end }}
