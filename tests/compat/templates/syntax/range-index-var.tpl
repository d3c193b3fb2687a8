{{ with secret "secret/data/golden" }}{{ range $i, $s := .Data.data.servers }}{{ $i }}:{{ $s }} {{ end }}{{ end }}
