{{ define "x" }}a
