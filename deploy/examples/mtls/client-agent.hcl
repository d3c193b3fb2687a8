# The client's certificate (client.home) from the same role; ca.crt as the server's.
exit_after_auth = false

pid_file = "/home/vault/pidfile"

auto_auth {
    method "kubernetes" {
        mount_path = "auth/kubernetes"
        config = {
            role = "authkube"
        }
    }

    sink "file" {
        config = {
            path = "/home/vault/.vault-token"
        }
    }
}


template {
destination = "/etc/nginx/ssl/tls.crt"
contents = <<EOT
{{- with pkiCert "pki_intermediate/issue/home" "common_name=client.home" "ttl=24h" -}}
{{ .Data.Cert }}
{{ .Data.CA }}
{{ if .Data.Key }}
{{ .Data.Key | writeToFile "/etc/nginx/ssl/tls.key" "" "" "0640" }}
{{ .Data.CA | writeToFile "/etc/nginx/ssl/ca.crt" "" "" "0644" }}
{{ end }}
{{ end }}    
EOT
perms = 0644
}
