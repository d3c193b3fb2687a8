{{- with secret "secret/data/caresync/alert" }}
{{- range $k, $v := .Data.data }}
{{ $k }}={{ $v }}
{{- end }}
{{- end }}
