{{ with secret "secret/data/golden" }}{{ len .Data.data.servers }} {{ len .Data.data.labels }} {{ len "héllo" }} {{ len .Data.data.empty_list }}{{ end }}
