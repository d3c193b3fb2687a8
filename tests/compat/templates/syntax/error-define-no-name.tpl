{{ define x }}a{{ end }}
