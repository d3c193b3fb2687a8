{{- with secret "pki/issue/web" "common_name=web.example.com" "ttl=24h" }}
tls.crt: |
{{ .Data.certificate | indent 2 }}
tls.key: |
{{ .Data.private_key | indent 2 }}
ca.crt: |
{{ .Data.issuing_ca | indent 2 }}
serial: {{ .Data.serial_number }}
expiration: {{ .Data.expiration }}
key_type: {{ .Data.private_key_type }}
{{- end }}
