{{ with secret "secret/data/golden" }}{{ eq .Data.data.servers .Data.data.servers }}{{ end }}
