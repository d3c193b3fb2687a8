{{ with secret "secret/golden" }}{{ .Data.data.hosts | toJSON }}{{ end }}
