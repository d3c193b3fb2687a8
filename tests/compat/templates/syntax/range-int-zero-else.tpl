{{ range 0 }}x{{ else }}empty{{ end }} {{ range -2 }}x{{ else }}negative{{ end }}
