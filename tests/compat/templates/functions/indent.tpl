{{ with secret "secret/data/golden" }}{{ .Data.data.cert | indent 4 }}{{ end }}[{{ "a\n\nb" | indent 2 }}] [{{ "" | indent 3 }}]
