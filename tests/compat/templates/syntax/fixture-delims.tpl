Curly braces stay literal here: {{ .Data.data.name }} and {{- these -}}.
[[ with secret "secret/data/golden" -]]
name=[[ .Data.data.name ]]
[[- range $k, $v := .Data.data.labels ]]
  [[ $k ]]: [[ $v ]]
[[- end ]]
[[/* a comment */]]
[[- if .Data.data.enabled -]]
  enabled
[[- end ]]
[[ printf "%s]]" "close-delimiter-in-string" ]]
[[ end -]]
