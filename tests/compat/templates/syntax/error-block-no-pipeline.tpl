{{ block "b" }}a{{ end }}
