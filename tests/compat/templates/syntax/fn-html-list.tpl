{{ with secret "secret/data/golden" }}{{ html .Data.data.servers }} {{ js .Data.data.labels }}{{ end }}
