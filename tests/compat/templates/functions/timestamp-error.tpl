{{ timestamp "a" "b" }}
