{{ range (sprig_list "some_words" "http_server" "no_https" "_complex__case_" "some words" "a" "_" "__" "-x-" "already CamelCase" "hello-world_foo bar" "ärger_über" "x__y" "1_2_3" "") }}[{{ sprig_camelcase . }}]
{{ end }}
