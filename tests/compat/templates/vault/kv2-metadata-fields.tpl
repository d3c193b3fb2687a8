{{ with secret "secret/golden" }}{{ .Data.metadata.version }} {{ .Data.metadata.destroyed }} [{{ .Data.metadata.deletion_time }}]{{ end }}
