# HCL1 as the injector's ConfigMap examples write it, grown by hand: an object holding a
# labelled block, an object given twice, commas ending attributes.
"exit_after_auth" = false,
"pid_file" = "/home/vault/.pid",

"auto_auth" = {
  "method" = {
    "type" = "kubernetes",
    "config" = {
      "role" = "web",
    }
  }
  sink "file" {
    config = {
      path = "/home/vault/.vault-token",
    }
  }
}

"template" = {
  "destination" = "/etc/tls/tls.crt",
  "contents" = "{{ with pkiCert \"pki/issue/web\" \"common_name=web.example.com\" }}{{ .Cert }}{{ .Key | writeToFile \"/etc/tls/tls.key\" \"\" \"\" \"0600\" }}{{ end }}",
}

"template" = {
  "destination" = "/etc/tls/ca.crt",
  "contents" = "{{ with secret \"pki/cert/ca\" }}{{ .Data.certificate }}{{ end }}",
  "left_delimiter" = "{{",
}
