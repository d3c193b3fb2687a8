{{ with secret "secret/data/web" -}}
  export api_key="{{ .Data.data.payments_api_key }}"
{{- end }}
