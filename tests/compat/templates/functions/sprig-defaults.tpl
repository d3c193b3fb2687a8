{{ sprig_default "foo" "" }}|{{ sprig_default "foo" "bar" }}|{{ sprig_default "foo" 0 }}|{{ sprig_default "foo" }}|{{ sprig_default "foo" (sprig_list) }}|{{ sprig_default "foo" false }}
{{ sprig_empty "" }}|{{ sprig_empty 0 }}|{{ sprig_empty 1.5 }}|{{ sprig_empty (sprig_dict) }}|{{ sprig_empty nil }}
{{ sprig_coalesce 0 "" "x" "y" }}|{{ sprig_coalesce 0 "" }}|{{ sprig_all 1 "a" true }}|{{ sprig_all 1 "" }}|{{ sprig_any 0 "" "x" }}|{{ sprig_any 0 "" }}|{{ sprig_ternary "yes" "no" true }}|{{ sprig_ternary "yes" "no" false }}
