{{ println "a" 1 2 "b" }}{{ println }}|
