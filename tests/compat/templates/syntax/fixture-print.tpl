{{ print 1 2 "a" "b" 3 true false }}|{{ print "a" 1 2 "b" }}|{{ print }}|{{ print 1.5 2 nil }}|{{ print "x" nil "y" }}
{{ println 1 "a" 2 -}}
{{ println -}}
{{ println "end" }}
{{ print 1 2 | print 3 }}|{{ "a" | print "b" }}|{{ print true "t" false }}
{{ with secret "secret/data/golden" }}{{ print .Data.data.servers .Data.data.ports "s" .Data.data.labels }}
{{ println .Data.data.enabled .Data.data.name }}{{ end -}}
