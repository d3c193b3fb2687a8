{{ with secret "secret/data/golden" }}{{ range $s := .Data.data.ports }}{{ $s }}/{{ . }} {{ end }}{{ end }}
