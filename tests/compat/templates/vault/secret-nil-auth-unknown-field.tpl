{{ with secret "secret/data/golden" }}{{ .Auth.Nope }}{{ end }}
