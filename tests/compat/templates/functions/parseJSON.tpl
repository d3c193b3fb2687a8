{{ with "{\"a\":[1,\"x\",true,null],\"b\":{\"c\":2.5}}" | parseJSON }}{{ .a }} {{ .b.c }} {{ index .a 0 }} {{ .b }}{{ end }}
{{ "" | parseJSON }} {{ "[1, 2]" | parseJSON }} {{ "\"s\"" | parseJSON }}
