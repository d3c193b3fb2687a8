{{ with secret "secret/data/golden" }}{{ sprig_toJson .Data.data.nested }}
{{ sprig_toPrettyJson .Data.data.labels }}
{{ sprig_toRawJson (sprig_dict "h" "<&>") }}|{{ sprig_toJson (sprig_dict "h" "<&>") }}|{{ sprig_mustToJson (sprig_list 1 2.0) }}|{{ sprig_mustToPrettyJson (sprig_list) }}|{{ sprig_mustToRawJson "<" }}{{ end }}
{{ (sprig_fromJson "{\"a\":1}").a }}|{{ sprig_fromJson "{" }}|{{ sprig_mustFromJson "[1,\"x\"]" }}
