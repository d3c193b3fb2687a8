{{ define "item" }}- {{ .name }}:{{ .port }}{{ end }}{{ with secret "secret/data/golden" }}{{ range .Data.data.hosts }}{{ executeTemplate "item" . }}
{{ end }}{{ end }}