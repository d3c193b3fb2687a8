{{ "0x10" | parseInt }}
