{{ with secret "kv/data/dev/apps/default/config" }}
{{ range $k, $v := .Data.data }}
export {{ $k | toUpper }}={{ $v | toJSON }}
{{ end }}
{{ end }}
