{{ with secret "secret/data/golden" }}{{ index .Data.data.servers 99 }}{{ end }}
