{{ html "<a href=\"x\">Tom & Jerry's</a>" }}
{{ html "a" 1 "<" }} {{ html 1 2 }} {{ html nil }}
