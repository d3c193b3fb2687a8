{{ define "" }}x{{ end }}main
