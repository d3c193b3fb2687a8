# Comment this out if running as sidecar instead of initContainer
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
{{- with pkiCert "pki_intermediate/issue/home" "common_name=foo.home" "alt_names=localhost,bar.home" "ttl=24h" -}}
{{ .Data.Cert }}
{{ .Data.CA }}
{{ if .Data.Key }}
{{ .Data.Key | writeToFile "/etc/nginx/ssl/tls.key" "" "" "0640" }}
{{ end }}
{{ end }}    
EOT
perms = 0644
}
