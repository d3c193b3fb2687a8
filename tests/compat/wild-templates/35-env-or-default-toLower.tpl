cluster_id = {{ env "CLUSTER_ID" | toLower }}
cluster_id_default = {{ or (env "CLUSTER_ID") "12345" }}
home_set = {{ if env "HOME" }}yes{{ else }}no{{ end }}
{{ with secret "secret/data/app/config" -}}
api_key = {{ .Data.data.api_key }}
{{- end }}
