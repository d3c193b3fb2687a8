{{ with secret "secret/data/golden" -}}
{{ index .Data.data.servers 0 }} {{ index .Data.data.servers 2 }}
{{ index .Data.data "name" }} {{ index .Data "data" "name" }}
{{ index .Data.data.nested "mid" "deep" }} {{ index .Data.data.nested "mid" "list" 1 }}
{{ index .Data.data.matrix 1 0 }} {{ index (index .Data.data.matrix 0) 1 }}
{{ index .Data.data.labels "nope" }}|{{ index .Data.data.servers }}
{{ (index .Data.data.hosts 0).name }} {{ (index .Data.data.hosts 1).port }} {{ (index .Data.data.hosts 0).tags }}
{{ index "abc" 1 }} {{ index .Data.data.name 0 }}
{{ (index .Data.data "nested").mid.deep }}
{{ $key := "labels" }}{{ index .Data.data $key "a" }} {{ index .Data.data.ports 1 }}
{{ with index .Data.data.hosts 0 }}{{ .name }} {{ len .tags }}{{ end }}
{{ end -}}
