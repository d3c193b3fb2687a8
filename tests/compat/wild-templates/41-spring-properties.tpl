{{- /* application.properties for spring boot */ -}}
{{ with secret "secret/data/spring/datasource" -}}
spring.datasource.url=jdbc:postgresql://postgres:5432/app
spring.datasource.username={{ .Data.data.username }}
spring.datasource.password={{ .Data.data.password }}
{{ end -}}
{{/* trailing comment */}}
