{{- with secret "secret/data/golden" -}}
{{ .Data.data.cert }}
{{ .Data.data.ca }}
{{ if .Data.data.key }}
{{ .Data.data.key | print }}
{{ end }}
{{ end }}    
