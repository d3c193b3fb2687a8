{{ with secret "secret/data/sda/service-secrets" -}}
{{ if .Data.data }}{{- range $k, $v := .Data.data }}
export SDA_{{ $k }}='{{ $v }}'
{{- end }}{{- end }}{{- end }}
