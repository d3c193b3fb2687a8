{{ sprig_dict "html" "<&>" "l" (sprig_list 1 "x") | toUnescapedJSON }}
