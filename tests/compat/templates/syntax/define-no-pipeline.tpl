{{ define "x" }}[{{ . }}][{{ .a }}]{{ end }}{{ template "x" }}
