{{ "a*b" | base64Decode }}
