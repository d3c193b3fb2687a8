{{ with secret "secret/data/numbers" }}{{ range $k, $v := .Data.data }}{{ $k }}={{ $v }}
{{ end }}---
{{ .Data.data | toJSON }}
---
{{ .Data.data | toYAML }}
---
{{ .Data.data | toTOML }}{{ end }}
