# JWT login that keeps its file, and a sink block Vault Agent ignores (a misspelt wrapper).
auto_auth {
  method "jwt" {
    config = {
      path                        = "/var/run/secrets/tokens/vault"
      role                        = "web"
      remove_jwt_after_reading    = false
      remove_jwt_follows_symlinks = true
    }
  }
  sinks {
    sink "file" {
      config = {
        path = "/home/vault/.vault-token"
        mode = 384
      }
    }
  }
}

template {
  destination = "/etc/tls/tls.crt"
  contents    = "{{ with pkiCert \"pki/issue/web\" \"common_name=web.example.com\" }}{{ .Cert }}{{ end }}"
}
