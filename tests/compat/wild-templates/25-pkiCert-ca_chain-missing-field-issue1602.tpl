{{- with pkiCert "pki/issue/foo" "common_name=bar.tld" "alt_names=localhost" "ip_sans=127.0.0.1" "ttl=720h"}}
{{.Data.Cert }}
{{.Data.ca_chain }}
{{.Data.Key }}
{{ end }}
