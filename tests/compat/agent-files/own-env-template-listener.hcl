# env_template with a plain listener (no api_proxy block): OpenBao refuses env_template only
# beside an api_proxy block.
auto_auth {
  method "token_file" {
    config = {
      token_file_path = "/etc/vault/token"
    }
  }
}

listener "tcp" {
  address     = "127.0.0.1:8100"
  tls_disable = true
}

env_template "API_KEY" {
  contents             = "{{ with secret \"secret/data/web\" }}{{ .Data.data.api_key }}{{ end }}"
  error_on_missing_key = true
}

exec {
  command                   = ["/usr/bin/env"]
  restart_on_secret_changes = "never"
}
