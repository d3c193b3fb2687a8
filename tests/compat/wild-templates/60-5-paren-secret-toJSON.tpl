{{ (secret "secret/data/a").Data.data | toJSON }}
