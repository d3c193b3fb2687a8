{{- with secret "pki/issue/nginx" "common_name=www.example.com" "alt_names=example.com" "ttl=72h" -}}
{{ .Data.certificate }}
{{ range .Data.ca_chain -}}
{{ . }}
{{ end -}}
{{- end -}}
