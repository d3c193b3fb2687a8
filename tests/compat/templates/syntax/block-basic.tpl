{{ with secret "secret/data/golden" }}{{ block "list" .Data.data.servers }}{{ range . }}-{{ . }}{{ end }}{{ end }}{{ end }}
