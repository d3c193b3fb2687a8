{{ with secret "secret/data/golden" }}{{ $i := 0 }}{{ $v := "" }}{{ range $i, $v = .Data.data.servers }}{{ end }}{{ $i }} {{ $v }}{{ end }}
