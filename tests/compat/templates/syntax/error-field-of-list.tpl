{{ with secret "secret/data/golden" }}{{ .Data.data.servers.x }}{{ end }}
