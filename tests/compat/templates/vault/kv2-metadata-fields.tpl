{{ with secret "secret/golden" }}{{ .Data.metadata.destroyed }} [{{ .Data.metadata.deletion_time }}] {{ if .Data.metadata.created_time }}created{{ end }}{{ end }}
