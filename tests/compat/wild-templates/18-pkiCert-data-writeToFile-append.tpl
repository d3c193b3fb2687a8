{{- with pkiCert
  "pki-int-srv/issue/nginx"
  "common_name=vault"
  "alt_names=vault.home.arpa,vault"
  "ttl=72h" -}}

{{- .Data.Key  | writeToFile "out18/vault.key" "0" "0" "0600" -}}
{{- .Data.Cert | writeToFile "out18/vault.crt" "0" "0" "0644" -}}
{{- .Data.CA   | writeToFile "out18/vault.crt" "0" "0" "0644" "append,newline" -}}

{{- end -}}
