{{ printf "%v" (secret "secret/data/a").Data.data }}
