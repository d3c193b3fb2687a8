{{ $x := "outer" }}{{ with "inner" }}{{ $x := . }}{{ $x }}{{ end }} {{ $x }}
