{{ define "" }}x{{ end }}
