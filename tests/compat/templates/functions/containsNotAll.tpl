{{ with secret "secret/data/golden" }}{{ .Data.data.servers | containsNotAll (sprig_list "alpha" "zulu") }} {{ .Data.data.servers | containsNotAll (sprig_list "alpha" "bravo") }}{{ end }}
