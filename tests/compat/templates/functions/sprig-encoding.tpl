{{ sprig_b64enc "hello?>" }}|{{ sprig_b64dec "aGVsbG8/Pg==" }}|{{ sprig_b64dec "*" }}|{{ sprig_b32enc "hello" }}|{{ sprig_b32dec "NBSWY3DP" }}|{{ sprig_b32enc "hi" }}|{{ sprig_b32dec "x" }}
{{ sprig_sha1sum "abc" }}|{{ sprig_sha256sum "abc" }}|{{ sprig_adler32sum "Wikipedia" }}
