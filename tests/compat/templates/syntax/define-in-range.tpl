{{ with secret "secret/data/golden" }}{{ range .Data.data.hosts }}{{ template "h" . }};{{ end }}{{ end }}{{ define "h" }}{{ .name }}{{ range .tags }}+{{ . }}{{ end }}{{ end }}
