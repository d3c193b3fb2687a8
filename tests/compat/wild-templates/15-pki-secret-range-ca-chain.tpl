{{- with secret "demo-pki_iss/issue/hashicorp" "common_name=vault.hashicorp.com" "ttl=60s" -}}
{{- range .Data.ca_chain -}}
{{ . }}
{{ end -}}
{{- end -}}
