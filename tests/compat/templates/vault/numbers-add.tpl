{{ with secret "secret/data/golden" }}{{ add .Data.data.count 1 }}{{ end }}
