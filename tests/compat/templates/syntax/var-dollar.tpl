{{ with secret "secret/data/golden" }}{{ range .Data.data.servers }}{{ $.Data.data.name }}-{{ . }} {{ end }}{{ end }}
