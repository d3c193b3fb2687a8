{{ with pkiCert "pki/issue/r" "common_name=a.example.com" }}{{ . | toJSON }}{{ end }}
