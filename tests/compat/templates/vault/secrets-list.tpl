{{ range secrets "secret/" }}{{ . }}
{{ end }}