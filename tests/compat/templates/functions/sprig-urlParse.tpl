{{ $u := sprig_urlParse "https://user:p%40ss@example.com:8443/a/b%20c?x=1&y=2#frag" }}{{ range $k, $v := $u }}{{ $k }}={{ $v }}
{{ end }}{{ $v := sprig_urlParse "mailto:root@example.com" }}{{ $v.scheme }}|{{ $v.opaque }}|{{ $v.path }}
{{ $w := sprig_urlParse "/relative/path?q" }}{{ $w.path }}|{{ $w.query }}|{{ $w.host }}
{{ $x := sprig_urlParse "http://[::1]:80/" }}{{ $x.host }}|{{ $x.hostname }}
{{ $y := sprig_urlParse "http://user@h/%7Efoo" }}{{ $y.userinfo }}|{{ $y.path }}
