{{ with secret "secret/data/golden" }}{{ eq .Data.data.count 3 }}{{ end }}
