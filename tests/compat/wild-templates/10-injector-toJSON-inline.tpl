{{- with secret "secret/data/minha-api/config" -}}{{ .Data.data | toJSON }}{{- end -}}
