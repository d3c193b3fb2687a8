"auto_auth" = {
  "method" = {
    "config" = {
      "role" = "db-app"
    }
    "type" = "kubernetes"
  }

  "sink" = {
    "config" = {
      "path" = "/home/openbao/.token"
    }

    "type" = "file"
  }
}

"exit_after_auth" = true
"pid_file" = "/home/openbao/.pid"

"template" = {
  "contents" = "{{- with secret \"database/creds/db-app\" -}}postgres://{{ .Data.username }}:{{ .Data.password }}@postgres:5432/mydb?sslmode=disable{{- end }}"
  "destination" = "/openbao/secrets/db-creds"
}

"openbao" = {
  "address" = "https://openbao.demo.svc.cluster.local:8200"
  "ca_cert" = "/openbao/tls/ca.crt"
  "client_cert" = "/openbao/tls/client.crt"
  "client_key" = "/openbao/tls/client.key"
}
