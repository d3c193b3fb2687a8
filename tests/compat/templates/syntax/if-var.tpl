{{ with secret "secret/data/golden" }}{{ if $x := .Data.data.servers }}{{ len $x }}{{ end }}{{ end }}
