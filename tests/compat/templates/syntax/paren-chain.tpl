{{ with secret "secret/data/golden" }}{{ (index .Data.data.hosts 0).name }} {{ (index .Data.data.hosts 1).port }} {{ (index .Data.data "nested").mid.deep }}{{ end }}
