{{ print "a" "b" 1 2 "c" 3.5 true }}|{{ print }}|{{ print nil }}
