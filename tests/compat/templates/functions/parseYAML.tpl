{{ with "a: 1\nb: [x, 2.5]\nd: text\n" | parseYAML }}{{ .a }} {{ .b }} {{ .d }}{{ end }}
{{ "" | parseYAML }} {{ "- 1\n- two\n" | parseYAML }}
