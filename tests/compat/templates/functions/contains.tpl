{{ with secret "secret/data/golden" }}{{ .Data.data.servers | contains "bravo" }} {{ .Data.data.servers | contains "zulu" }}{{ end }} {{ "foobar" | contains "oba" }} {{ "foobar" | contains "x" }}
