{{ with secret "secret/data/golden" }}{{ slice .Data.data.servers 0 4 }}{{ end }}
