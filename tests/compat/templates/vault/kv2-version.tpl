{{ with secret "secret/golden?version=1" }}{{ .Data.data.name }} v{{ .Data.metadata.version }}{{ end }}
