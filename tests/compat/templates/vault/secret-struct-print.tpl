{{- with secret "secret/data/golden" -}}
auth={{ .Auth }} wrap={{ .WrapInfo }} warnings={{ .Warnings }} lease=[{{ .LeaseID }}] {{ .LeaseDuration }} {{ .Renewable }}
{{ printf "%v|%+v|%#v|%#v|%#v" .Auth .Warnings .WrapInfo .Warnings .Auth }}
{{ printf "%T %T %T %T %T" . .Auth .Warnings .Data .LeaseDuration }}
{{ .Warnings | toJSON }} {{ .Auth | toJSON }} {{ .WrapInfo | toJSONPretty }} {{ len .Warnings }}
{{ if .Auth }}auth{{ else }}no auth{{ end }} {{ range .Warnings }}w{{ else }}no warnings{{ end }} {{ and .Renewable .Auth }} {{ or .Auth "none" }}
{{ printf "%+v" .Data.data.labels }} {{ printf "%#v" .Data.data.labels }} {{ printf "%#v" .Data.data.servers }} {{ printf "%#v" .Data.data.empty_map }}
{{ printf "%+v" .Data.data.nested }}
{{ printf "%#v" .Data.data.nested }}
{{- end }}
