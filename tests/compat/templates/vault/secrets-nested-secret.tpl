{{ range secrets "secret/" }}{{ . }}: {{ with secret (printf "secret/%s" .) }}{{ .Data.data.name }}{{ end }}
{{ end }}