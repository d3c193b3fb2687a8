{{ sprig_urlJoin (sprig_dict "scheme" "https" "host" "example.com:8443" "path" "/a/b c" "query" "x=1" "fragment" "f g" "userinfo" "user:pass") }}
{{ sprig_urlJoin (sprig_dict "scheme" "mailto" "opaque" "root@example.com") }}
{{ sprig_urlJoin (sprig_dict "path" "relative/x") }}|{{ sprig_urlJoin (sprig_dict) }}|{{ sprig_urlJoin (sprig_dict "host" "h" "path" "p") }}
{{ sprig_urlJoin (sprig_dict "scheme" "http" "host" "h" "path" "/ü?#%") }}
{{ sprig_urlJoin (sprig_urlParse "https://u:p@e.com/x/y?q=1#z") }}
