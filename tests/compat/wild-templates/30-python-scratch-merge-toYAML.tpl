{{ with secret "secret/data/terraform/backend" }}{{ range $key, $value := .Data.data }}
            {{ scratch.MapSet "secrets" $key $value }}{{ end }}{{ end }}{{ with secret "secret/data/terraform/provider" }}{{ range $key, $value := .Data.data }}
            {{ scratch.MapSet "secrets" $key $value }}{{ end }}{{ end }}{{ scratch.Get "secrets" | toYAML }}
