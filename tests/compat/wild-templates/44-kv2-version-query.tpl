{{ with secret "secret/data/app/versioned?version=1" -}}
v1 password={{ .Data.data.password }} version={{ .Data.metadata.version }}
{{- end }}
