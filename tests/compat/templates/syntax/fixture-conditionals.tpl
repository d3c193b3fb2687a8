{{ with secret "secret/data/golden" -}}
{{ $d := .Data.data -}}
{{ if $d.enabled }}enabled{{ end }}
{{ if $d.disabled }}disabled{{ else }}not disabled{{ end }}
{{ if $d.empty }}empty{{ else if $d.missing }}missing{{ else if $d.name }}name={{ $d.name }}{{ else }}none{{ end }}
{{ if not $d.empty }}empty is false{{ end }}
{{ with $d.missing }}has missing{{ else with $d.nested.mid }}mid.deep={{ .deep }}{{ else }}none{{ end }}
{{ with $d.empty_list }}list{{ else }}empty list is false{{ end }}
{{ with $d.empty_map }}map{{ else }}empty map is false{{ end }}
{{ with $d.nested }}{{ with .mid }}{{ with .list }}{{ index . 1 }}{{ end }}{{ end }}{{ end }}
{{ if 0 }}zero{{ else if 0.0 }}zero float{{ else if "" }}empty{{ else if "0" }}string zero is true{{ end }}
{{ if and $d.enabled $d.name }}and true{{ end }} {{ if or $d.disabled $d.empty }}or true{{ else }}or false{{ end }}
{{ if $d.enabled -}}
  {{ if $d.disabled -}}
    inner yes
  {{- else -}}
    inner no
  {{- end }}
{{- end }}
{{ end -}}
