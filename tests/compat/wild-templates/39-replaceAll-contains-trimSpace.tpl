{{- with secret "secret/data/app/url" }}
{{- $url := .Data.data.url | replaceAll "val-" "https://" | trimSpace }}
url={{ $url }}
{{- if $url | contains "https" }}
tls=true
{{- else }}
tls=false
{{- end }}
host={{ index ($url | split "//") 1 }}
{{- end }}
