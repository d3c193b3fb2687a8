{{ with secret "secret/data/golden" }}{{ $ }}|{{ print .Data.data.nope }}|{{ and .Data.data.nope 1 }}|{{ printf "%v" .Data.data.nope }}{{ end }}
