{{ with secret "secret/data/a" }}{{ . | toJSON }}{{ end }}
