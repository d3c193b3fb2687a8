{{ if true }}{{ define "x" }}a{{ end }}{{ end }}
