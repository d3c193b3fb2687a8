{{ "Hello World" | toLower }} {{ "hello" | toUpper }} {{ "hello world-wide don't x_y 3rd" | toTitle }}
