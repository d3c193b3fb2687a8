{
    {{- with pkiCert "pki_int/issue/example-dot-com" "common_name=test.example.com" -}}
        {{ .Cert }}{{ .CA }}{{ .Key }}
        {{ .Key | writeToFile "nginx/keys/nginx_private_key.pem" "" "" "0400" }}
        {{ .Cert | writeToFile "nginx/keys/nginx_certificate_chain.pem" "" "" "0644" }}
        {{ with secret "pki_int/cert/ca_chain" }}
            {{ .Data.ca_chain | writeToFile "nginx/keys/nginx_certificate_chain.pem" "" "" "0644" "append"}}
        {{ end }}
    {{- end -}}
}
