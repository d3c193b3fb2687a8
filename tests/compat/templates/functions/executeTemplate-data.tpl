{{ define "greet" }}hello {{ . }}{{ end }}{{ executeTemplate "greet" "world" }}
