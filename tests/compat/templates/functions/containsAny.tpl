{{ with secret "secret/data/golden" }}{{ .Data.data.servers | containsAny (sprig_list "zulu" "bravo") }} {{ .Data.data.servers | containsAny (sprig_list "zulu") }}{{ end }}
