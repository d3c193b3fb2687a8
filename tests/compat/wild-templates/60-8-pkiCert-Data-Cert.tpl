{{ with pkiCert "pki/issue/r" "common_name=a.example.com" "ttl=1h" }}{{ .Data.Cert }}{{ end }}
