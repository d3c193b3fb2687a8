{{ with secret "secret/data/golden" }}{{ $last := "" }}{{ range .Data.data.servers }}{{ $last = . }}{{ end }}{{ $last }}{{ end }}
