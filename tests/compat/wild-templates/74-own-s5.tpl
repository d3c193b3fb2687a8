{{ with secret "secret/data/a" }}{{ printf "%+v" .Data.metadata }}{{ printf "%#v" .Data.data }}{{ .Auth }}{{ .Warnings }}{{ .LeaseDuration }}{{ .Renewable }}{{ .WrapInfo }}{{ end }}
