{{ with secret "secret/data/app/flags" -}}
{{ if and .Data.data.user (ne .Data.data.env "val-prod") -}}
non-prod user {{ .Data.data.user }}
{{ end -}}
{{ if or (eq (env "APP_ENV") "prod") (eq .Data.data.env "val-env") -}}
env matched
{{ end -}}
{{ if not (eq .Data.data.user "") }}has user{{ end }}
{{ end }}
