exit_after_auth = false
pid_file = "/var/lib/vault/agent.pid"

cache {
  use_auto_auth_token = true
}

listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = true
}

vault {
  tls_disable = true
  address     = "https://vault.service.consul:8200"
}

template {
  source      = "/tmp/agent-corpus/agent/src/04-keyfile.tmpl"
  destination = "/etc/consul.d/keyfile"
}

template {
  source      = "/tmp/agent-corpus/agent/src/04-cert.tmpl"
  destination = "/etc/consul.d/cert"
  #command     = "sh -c 'sudo systemctl start consul && sudo systemctl reload consul'"
}
