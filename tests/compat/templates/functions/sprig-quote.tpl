{{ sprig_quote "a\"b" 1 nil 2.5 }}|{{ sprig_squote "a" 1 }}|{{ sprig_cat "hello" "beautiful" 1 nil "world" }}|{{ sprig_indent 2 "a\nb" }}|{{ sprig_nindent 2 "a" }}|{{ sprig_quote }}
