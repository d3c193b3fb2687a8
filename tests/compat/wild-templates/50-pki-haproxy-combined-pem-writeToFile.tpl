{{ with secret "pki/issue/haproxy" "common_name=lb.example.com" "ttl=24h" -}}
{{ .Data.certificate }}
{{ .Data.private_key }}
{{ .Data.issuing_ca | writeToFile "haproxy/ca.pem" "" "" "0644" }}
{{- end }}
