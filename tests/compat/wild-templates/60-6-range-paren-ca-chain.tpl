{{ range $i, $e := (secret "pki/issue/r" "common_name=a.example.com").Data.ca_chain }}{{ $i }}{{ end }}
