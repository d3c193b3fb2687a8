{{- define "line" }}{{ .k | toUpper }}={{ .v | sprig_quote }}{{ end -}}
{{- with secret "secret/data/app/env" }}
{{- range $k, $v := .Data.data }}
{{ template "line" (sprig_dict "k" $k "v" $v) }}
{{- end }}
{{- end }}
