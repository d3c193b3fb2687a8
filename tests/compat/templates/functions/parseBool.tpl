{{ "true" | parseBool }} {{ "" | parseBool }} {{ "F" | parseBool }} {{ if "1" | parseBool }}yes{{ end }}
