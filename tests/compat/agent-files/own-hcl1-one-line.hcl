# HCL1 forms found in public agent files and OpenBao's docs that HCL2 parsers refuse:
# blocks written on one line, objects without commas, %{ and ${ as text, a key given twice
# (the last counts), a file mode written in decimal (384 is 0600).
pid_file = "/tmp/pki-sidecar-compat/agent.pid"
pid_file = "/tmp/pki-sidecar-compat/agent-last.pid"

auto_auth {
  method "approle" { config = { role_id_file_path = "/etc/vault/role-id" secret_id_file_path = "/etc/vault/secret-id" remove_secret_id_file_after_reading = false } }
  sink "file" { config = { path = "/tmp/pki-sidecar-compat/token" mode = 384 } }
}

vault { address = "https://vault.example.com:8200" retry { num_retries = 5 } }

template { destination = "/tmp/pki-sidecar-compat/haproxy.cfg"  contents = "log-format \"%{+Q}o %ci:%cp %{+Q}r\"" }

template {
  destination = "/tmp/pki-sidecar-compat/httpd.conf"
  destination = "/tmp/pki-sidecar-compat/httpd-last.conf"
  wait = { min = "2s" max = "10s" }
  contents = <<EOT
LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"" combined
SetEnv TOKEN_FILE ${TOKEN_FILE:-/tmp/token}
{{ with secret "secret/data/web" }}Define API_KEY {{ .Data.data.api_key }}{{ end }}
EOT
}
