{{- define "remember" }}{{ scratch.Set "seen" . }}{{ end -}}
{{- define "recall" }}recalled {{ scratch.Get "seen" }}{{ end -}}
{{ executeTemplate "remember" "from define" }}{{ executeTemplate "recall" }}
{{ template "remember" "by template" }}{{ template "recall" }}
