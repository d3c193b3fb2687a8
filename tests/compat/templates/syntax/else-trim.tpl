{{ if false }}
  a
{{- else -}}
  b
{{- end }}
