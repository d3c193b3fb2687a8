{{ with secret "secret/data/golden" }}{{ range .Data.data.servers }}{{ if eq . "bravo" }}{{ continue }}{{ end }}{{ . }} {{ end }}{{ end }}
