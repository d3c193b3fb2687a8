{{ sprig_fail "please set the name" }}
