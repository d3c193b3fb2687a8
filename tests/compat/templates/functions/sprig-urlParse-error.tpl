{{ sprig_urlParse "http://[::1" }}
