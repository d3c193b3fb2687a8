{{ js "it's \"q\" \\ <b> & a=b\ttab\nnl\u0001 é \u2028 `t`" }}
{{ js 1 2 }}
