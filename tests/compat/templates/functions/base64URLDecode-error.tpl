{{ "a/b=" | base64URLDecode }}
