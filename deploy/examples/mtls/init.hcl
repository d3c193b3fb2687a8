# The init container renders every template once and exits, so the certificate, its key and
# ca.crt exist before the proxy starts (it refuses to start without its client_ca_file).
exit_after_auth = true
