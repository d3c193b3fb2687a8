{{ with secret "secret/data/devops/passwords" -}}
{{ .Data.data | toJSONPretty }}
{{- end }}
