{{ with secret "secret/data/golden" }}{{ template "host" index .Data.data.hosts 0 }}|{{ template "host" index .Data.data.hosts 1 }}{{ end }}{{ define "host" }}{{ .name }}:{{ .port }}{{ end }}
