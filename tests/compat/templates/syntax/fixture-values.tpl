{{ 42 }} {{ -7 }} {{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000_000 }} {{ 'a' }} {{ '\n' }} {{ +5 }}
{{ 1.5 }} {{ 3.0 }} {{ 1e3 }} {{ 1e6 }} {{ 1.5e-7 }} {{ 0.0001 }} {{ 0.00001 }} {{ 123456.0 }} {{ 1234567.0 }} {{ 1e21 }} {{ .5 }}
{{ true }} {{ false }} {{ "str" }} {{ `raw \n string` }} {{ "esc\t\"q\" \x41\101\u00e9" }}
{{ with secret "secret/data/golden" -}}
{{ .Data.data.servers }}
{{ .Data.data.labels }}
{{ .Data.data.nested }}
{{ .Data.data.matrix }}
{{ .Data.data.hosts }}
{{ .Data.data.empty_list }} {{ .Data.data.empty_map }} [{{ .Data.data.empty }}]
{{ .Data.data.missing }} {{ .Data.data.nested.nothing }}
{{ .Data.data.count }} {{ .Data.data.ratio }} {{ .Data.data.enabled }} {{ .Data.data.disabled }}
{{ .Data.data.quote }}
{{ (.Data.data.nested).mid.deep }} {{ ("paren") }} {{ (print "a" | print "b") }}
{{ end -}}
multi
line {{ print
  "multi-line action" }} done
