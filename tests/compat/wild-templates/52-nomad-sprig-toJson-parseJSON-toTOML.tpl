# Generate ENV from all vars
{{ with secret "secret/data/monitoring" }}{{ .Data.data | sprig_toJson | parseJSON | toTOML }}{{end}}
