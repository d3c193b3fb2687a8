{{ with secret "secret/data/golden" }}{{ .Data.data.nested | toYAML }}
---
{{ .Data.data.hosts | toYAML }}
---
{{ .Data.data.labels | toYAML }}{{ end }}
