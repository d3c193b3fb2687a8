{{ define "x" }}{{ . }}|{{ if . }}yes{{ else }}no{{ end }}{{ end }}{{ with secret "secret/data/a" }}{{ template "x" .Missing }}{{ end }}
