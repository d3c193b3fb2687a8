{{- /* set in one block, read in another; SetX keeps the first */ -}}
{{ with secret "secret/data/golden" }}{{ scratch.Set "name" .Data.data.name }}{{ scratch.Set "labels" .Data.data.labels }}{{ scratch.Set "count" .Data.data.count }}{{ end -}}
name={{ scratch.Get "name" }} count={{ scratch.Get "count" }} labels={{ scratch.Get "labels" }}
key: {{ scratch.Key "name" }} {{ scratch.Key "absent" }} absent={{ scratch.Get "absent" }}
{{ scratch.SetX "name" "other" }}{{ scratch.SetX "new" "fresh" }}setx: {{ scratch.Get "name" }} {{ scratch.Get "new" }}
{{ scratch.Set "name" "replaced" }}set: {{ scratch.Get "name" }}
{{ if scratch.Key "new" }}has new{{ end }}{{ if not (scratch.Key "nope") }}, no nope{{ end }}
{{ $v := scratch.Get "labels" }}{{ $v.a }} {{ (scratch.Get "labels").b }} {{ with scratch.Get "labels" }}{{ index . "c" }}{{ end }} [{{ (scratch.Get "absent").field }}]
{{ "piped" | scratch.Set "p" }}{{ scratch.Get "p" }} {{ scratch.Get "p" | printf "%q" }}
{{ range $i, $s := (scratch.Get "labels") }}{{ $i }}={{ $s }};{{ end }}
