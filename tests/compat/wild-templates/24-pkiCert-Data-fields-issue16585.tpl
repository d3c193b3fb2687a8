{{ with pkiCert "pki/issue/test-example-org" "ttl=1h" "common_name=foo.test.example.org"   -}}
{{ .Data.Cert }}
{{ .Data.Key }}
{{ .Data.CA }}
{{ end -}}
