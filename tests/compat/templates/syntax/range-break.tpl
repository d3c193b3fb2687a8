{{ with secret "secret/data/golden" }}{{ range .Data.data.servers }}{{ if eq . "charlie" }}{{ break }}{{ end }}{{ . }} {{ end }}{{ end }}
