{{ with secret "secret/data/golden" }}{{ with .Data.data.nope }}a{{ else with .Data.data.name }}{{ . }}{{ else }}c{{ end }}{{ end }}
