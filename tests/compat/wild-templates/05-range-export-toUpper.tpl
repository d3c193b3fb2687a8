
{{- with secret "kv/data/eve/service" -}}
{{ range $k, $v := .Data.data }}
export {{ $k | toUpper }}={{ $v }}
{{ end }}
{{- end }}
