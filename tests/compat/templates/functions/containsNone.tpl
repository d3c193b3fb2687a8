{{ with secret "secret/data/golden" }}{{ .Data.data.servers | containsNone (sprig_list "zulu" "yankee") }} {{ .Data.data.servers | containsNone (sprig_list "zulu" "alpha") }}{{ end }}
