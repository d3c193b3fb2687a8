{{ with secret "secret/golden" }}{{ index .Data.data "name" }} {{ index .Data.data.servers 1 }}{{ end }}
