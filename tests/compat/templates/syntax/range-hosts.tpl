{{ with secret "secret/data/golden" }}{{ range .Data.data.hosts }}{{ .name }}:{{ .port }} tags={{ range .tags }}{{ . }},{{ else }}none{{ end }}
{{ end }}{{ end }}