[[ .x ]] {{ "literal braces" }} [[ "hi" ]] [[- " trimmed " -]] x
