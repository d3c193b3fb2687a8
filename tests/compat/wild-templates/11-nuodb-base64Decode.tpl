{{- with secret "nuodb.com/data/TLS" -}}
  {{ .Data.data.tlsCACert | base64Decode }}
{{- end }}
