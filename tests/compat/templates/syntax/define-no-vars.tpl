{{ define "x" }}{{ $ }}{{ end }}{{ $v := "outer" }}{{ template "x" "dot" }} {{ $v }}
