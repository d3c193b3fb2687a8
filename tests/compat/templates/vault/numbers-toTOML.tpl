{{ with secret "secret/data/golden" }}{{ sprig_dict "c" .Data.data.count "r" .Data.data.ratio "p" .Data.data.ports | toTOML }}{{ end }}
