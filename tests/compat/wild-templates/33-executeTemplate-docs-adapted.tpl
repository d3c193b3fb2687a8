{{ define "custom" }}my custom template{{ end }}

This is my other template:
{{ executeTemplate "custom" }}

And I can call it multiple times:
{{ executeTemplate "custom" }}

Even with a new context:
{{ executeTemplate "custom" 42 }}

Or save it to a variable:
{{ $var := executeTemplate "custom" }}{{ $var }}
{{- define "dsn" }}postgres://{{ .Data.data.username }}:{{ .Data.data.password }}@db:5432/app{{ end }}
{{ with secret "secret/data/app/db" }}DATABASE_URL={{ executeTemplate "dsn" . }}{{ end }}
