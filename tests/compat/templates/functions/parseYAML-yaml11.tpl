{{ with "a: yes\nb: off\nc: 0x1F\nd: 1_000\n" | parseYAML }}{{ .a }} {{ .b }} {{ .c }} {{ .d }}{{ end }}
