{{ with secret "secret/data/golden" }}{{ .LeaseID.Nope }}{{ end }}
