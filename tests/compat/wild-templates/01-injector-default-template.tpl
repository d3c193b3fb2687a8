{{ with secret "secret/data/app/config" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}
{{ end }}{{ end }}
