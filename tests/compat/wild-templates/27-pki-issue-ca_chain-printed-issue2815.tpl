{{- with secret "test-intermediate-pki/issue/vault" "common_name=test" }}
{{ .Data.ca_chain }}
{{- end -}}
