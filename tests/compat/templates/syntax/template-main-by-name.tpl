{{ define "t" }}{{ template "" 1 }}{{ end }}{{ if . }}{{ . }}{{ else }}{{ template "t" }}{{ end }}
