{{ with pkiCert "pki/issue/consul" "common_name=server.dc1.consul" "ttl=25h" }}
{{ .Cert }}{{ .CA }}{{ .Key }}
{{ .Key | writeToFile "tls/dc1-server-consul-0-key.pem" "" "" "0400" }}
{{ .CA | writeToFile "tls/consul-agent-ca.pem" "" "" "0644" }}
{{ .Cert | writeToFile "tls/dc1-server-consul-0.pem" "" "" "0644" }}
{{ end }}
