{{ with secret "secret/data/golden" }}{{ printf "%s|%v|%q|%T|%x|%5s|%#v" .Data.data.count .Data.data.ratio .Data.data.count .Data.data.count .Data.data.count .Data.data.count .Data.data.count }}
{{ if .Data.data.count }}count-true{{ end }} {{ eq .Data.data.count "3" }} {{ len .Data.data.count }} {{ lt .Data.data.count "4" }} {{ index .Data.data.count 0 }}
{{ printf "%s" .Data.data.ports }} {{ printf "%v" .Data.data.ports }} {{ index .Data.data.ports 1 }}
{{ .Data.data | toYAML }}
{{ .Data.data | toJSON }}
{{ printf "%d|%f" .Data.data.count .Data.data.ratio }}
{{ .Data.data.count | sprig_add 1 }} {{ sprig_toString .Data.data.count }} {{ sprig_kindOf .Data.data.count }} {{ sprig_typeOf .Data.data.ratio }} {{ sprig_empty .Data.data.count }}
{{ sprig_quote .Data.data.count }} {{ sprig_max .Data.data.count 7 }} {{ sprig_int .Data.data.ratio }}
{{ slice .Data.data.count 0 1 }} {{ printf "%T" (slice .Data.data.count 0 1) }} {{ slice .Data.data.ratio 1 }}
{{ end }}
