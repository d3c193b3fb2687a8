{{ with secret "secret/data/golden" }}{{ .Auth.ClientToken }}{{ end }}
