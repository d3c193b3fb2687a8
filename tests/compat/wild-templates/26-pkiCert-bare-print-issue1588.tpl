{{ pkiCert "pki/issue/example-dot-com" "common_name=www.my-website.com" "ttl=1m" }}
