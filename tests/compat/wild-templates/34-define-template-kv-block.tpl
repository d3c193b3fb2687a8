{{- define "kv" -}}
{{- range $k, $v := . }}
{{ $k }} = {{ $v | toJSON }}
{{- end }}
{{- end -}}
[database]
{{- with secret "secret/data/app/db" }}{{ template "kv" .Data.data }}{{ end }}

[cache]
{{- with secret "secret/data/app/cache" }}{{ template "kv" .Data.data }}{{ end }}
