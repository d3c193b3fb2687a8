{{ "abc" | sha256Hex }}
{{ "abc" | md5sum }}
{{ hmacSHA256Hex "message" "key" }}
{{ "" | sha256Hex }}
