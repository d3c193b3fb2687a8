# A method's config with a key the method does not read (left from another method's
# example), and Vault Agent's connection and retry tuning.
vault {
  address = "https://vault.example:8200"
  retry {
    num_retries = 2147483647
  }
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role                                = "web"
      role_id_file_path                   = "/etc/vault/role-id"
      secret_id_file_path                 = "/etc/vault/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
}

template_config {
  max_connections_per_host = 20
}

template {
  destination = "/etc/tls/tls.crt"
  contents    = "{{ with pkiCert \"pki/issue/web\" \"common_name=web.example.com\" }}{{ .Cert }}{{ end }}"
}
