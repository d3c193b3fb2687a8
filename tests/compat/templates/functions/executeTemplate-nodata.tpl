{{ define "x" }}[{{ . }}]{{ end }}{{ executeTemplate "x" }}
