{{ range loop 1 2 3 }}{{ end }}
