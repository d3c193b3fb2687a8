# Certificate login against a role, a renewed client pair read at each login, Vault's CA for it.
vault {
  address = "https://vault.internal:8200"
  ca_cert = "/etc/vault/ca.pem"
}

auto_auth {
  method "cert" {
    mount_path = "auth/cert"
    config = {
      name        = "web"
      ca_cert     = "/etc/vault/ca.pem"
      client_cert = "/etc/vault/tls/client.crt"
      client_key  = "/etc/vault/tls/client.key"
      reload      = true
    }
  }
  sink "file" {
    config = {
      path = "/home/vault/.vault-token"
    }
  }
}

template {
  destination = "/etc/tls/tls.crt"
  contents    = "{{ with pkiCert \"pki/issue/web\" \"common_name=web.example.com\" }}{{ .Cert }}{{ end }}"
}
