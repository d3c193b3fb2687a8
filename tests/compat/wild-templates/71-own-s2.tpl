{{ with secret "pki/issue/r" "common_name=a.example.com" }}{{ .Data | toJSON }}{{ end }}
