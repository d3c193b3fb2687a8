# Clients must present a certificate that chains to ca.crt, the intermediate that issues this
# Pod's own certificate (written by the agent). The proxy rereads the file when it changes.
proxy {
  client_ca_file = "/etc/nginx/ssl/ca.crt"
  client_auth    = "require"
}
