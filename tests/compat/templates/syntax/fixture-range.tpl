{{ with secret "secret/data/golden" }}{{ with .Data.data -}}
labels sorted:
{{- range $k, $v := .labels }}
  {{ $k }}={{ $v }}
{{- end }}
servers with index:
{{ range $i, $s := .servers }}{{ if $i }}, {{ end }}{{ $i }}:{{ $s }}{{ end }}
one variable: {{ range $s := .servers }}[{{ $s }}]{{ end }}
dot in range: {{ range .servers }}<{{ . }}>{{ end }}
map values: {{ range .nested }}{{ . }};{{ end }}
empty list: {{ range .empty_list }}item{{ else }}nothing here{{ end }}
empty map: {{ range $k, $v := .empty_map }}{{ $k }}{{ else }}no keys{{ end }}
missing: {{ range .missing }}x{{ else }}missing is empty{{ end }}
break: {{ range $i, $s := .servers }}{{ if eq $s "charlie" }}{{ break }}{{ end }}{{ $s }} {{ end }}
continue: {{ range .servers }}{{ if eq . "bravo" }}{{ continue }}{{ end }}{{ . }} {{ end }}
nested: {{ range .matrix }}[{{ range . }}{{ . }}{{ end }}]{{ end }}
hosts:
{{- range .hosts }}
  {{ .name }}:{{ .port }} tags={{ .tags }} first={{ range .tags }}{{ . }}{{ break }}{{ else }}none{{ end }}
{{- end }}
$ in range: {{ range .servers }}{{ $.Data.data.name }}/{{ . }} {{ end }}
{{ end }}{{ end }}
