{{ range (sprig_list "FirstName" "HTTPServer" "NoHTTPS" "GO_PATH" "GO PATH" "GO-PATH" "http2xx" "HTTP20xOK" "Duration2m3s" "Bld4Floor3rd" "a" "A" "_" "__a__b" "  x  y " "camelCase" "some.dotted.Name" "x$y+z" "ÉcoleNormale" "HTTPStatus404" "v1.2.3Beta" "ABC" "aB" "Ab1" "9lives" "a-b_c d" "Hello, World!" "中文Name" "snake_case_already" "") }}[{{ sprig_kebabcase . }}]
{{ end }}
