{{ define "r" }}{{ if . }}{{ index . 0 }} {{ template "r" (slice . 1) }}{{ end }}{{ end }}{{ with secret "secret/data/golden" }}{{ template "r" .Data.data.servers }}{{ end }}
