{{ range secrets "secret/metadata/" }}{{ . }}
{{ end }}