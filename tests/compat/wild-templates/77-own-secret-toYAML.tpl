{{ with secret "secret/data/a" }}{{ sprig_dict "s" . | toYAML }}{{ end }}
