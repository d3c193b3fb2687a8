{{- with secret "pki/issue/mtls-default" "common_name=dc1.arcticlabs.dev" }}
{{ .Data.certificate }}{{ end }}
{{- with secret "pki/issue/mtls-default" "common_name=dc1.arcticlabs.dev" }}
{{ .Data.issuing_ca }}{{ end }}
{{- with secret "pki/issue/mtls-default" "common_name=dc1.arcticlabs.dev" }}
{{ .Data.private_key }}{{ end }}
{{- with secret "pki/issue/mtls-default" "common_name=dc1.arcticlabs.dev" }}
{{ .Data.certificate }}{{ end }}
