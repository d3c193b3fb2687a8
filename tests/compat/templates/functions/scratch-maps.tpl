{{- with secret "secret/data/golden" -}}
{{- range .Data.data.hosts }}{{ scratch.MapSet "ports" .name .port }}{{ scratch.MapSetX "first" "host" .name }}{{ end -}}
{{- range $k, $v := .Data.data.labels }}{{ scratch.MapSet "labels" $k $v }}{{ end -}}
{{- end -}}
ports: {{ scratch.MapValues "ports" }} {{ scratch.Get "ports" }}
first: {{ scratch.MapValues "first" }}
labels: {{ range scratch.MapValues "labels" }}{{ . }},{{ end }}
none: {{ scratch.MapValues "none" }} {{ len (scratch.MapValues "none") }}
json: {{ scratch.Get "ports" | toJSON }}
{{ scratch.MapSet "labels" "a" "ONE" }}{{ scratch.MapSetX "labels" "b" "TWO" }}{{ scratch.MapValues "labels" }}
{{ with scratch.Get "ports" }}{{ scratch.Set "nested" . }}{{ scratch.MapSet "nested" "z" 1 }}{{ end }}{{ scratch.MapValues "nested" }}
