{{ $n := "abc" | len }}{{ $n }}
