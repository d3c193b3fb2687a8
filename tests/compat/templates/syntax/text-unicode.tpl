héllo wörld ✓ 日本
{{ "ünï" }}
