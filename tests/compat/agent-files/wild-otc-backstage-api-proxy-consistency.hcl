pid_file = "/home/vault/pidfile"
auto_auth {
    method "kubernetes" {
        mount_path = "auth/kubernetes_otcinfra2"
        config = {
            role = "backstage"
            token_path = "/var/run/secrets/tokens/vault-token"
        }
    }
    sink "file" {
        config = {
            path = "/home/vault/.vault-token"
        }
    }
}

api_proxy {
  use_auto_auth_token = "force"
  enforce_consistency = "always"
}

listener "tcp" {
  address = "127.0.0.1:8100"
  tls_disable = true
}

template {
  destination = "/secrets/app-config.production.yaml"
  contents = <<EOT
app:
  baseUrl: https://backstage.eco.tsi-dev.otc-service.com

auth:
  environment: production
  providers:
    oauth2Proxy: {}
    github:
{{- with secret "secret/data/backstage/github" }}
      production:
        clientId: {{ .Data.data.clientId }}
        clientSecret: {{ .Data.data.clientSecret }}
{{- end }}

integrations:
  github:
    - host: github.com
      apps:
{{- with secret "secret/data/backstage/github" }}
        - appId: {{ .Data.data.appId }}
          clientId: {{ .Data.data.clientId }}
          clientSecret: {{ .Data.data.clientSecret }}
          webhookSecret: {{ .Data.data.webhookSecret}}
          privateKey: |
{{ .Data.data.privateKey | indent 12 }}
{{- end }}

proxy:
  '/grafana/api':
    target: https://dashboard.tsi-dev.otc-service.com
    headers:
{{- with secret "secret/data/backstage/grafana" }}
      Authorization: "Bearer {{ .Data.data.token }}"
{{- end }}
EOT
  perms = "0664"
}
