{{ define "x" }}{{ . }}|{{ if . }}yes{{ else }}no{{ end }}{{ end }}{{ template "x" .Missing }}
