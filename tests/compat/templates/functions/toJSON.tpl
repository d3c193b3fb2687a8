{{ with secret "secret/data/golden" }}{{ .Data.data | toJSON }}{{ end }}
{{ sprig_dict "html" "<&>" "f" 2.0 "g" 1.5 "n" nil | toJSON }}
