{{- with secret "secret/data/svc/app" }}{{- range $k, $v := .Data.data }}{{- scratch.MapSet "secrets" $k $v }}{{- end }}{{- end }}
  {{- scratch.Get "secrets" | toJSONPretty }}
