{{ sprig_add1f 1.5 }} {{ sprig_add1f "2.25" }} {{ sprig_add1f 3 }} {{ sprig_add1f "x" }}
{{ sprig_addf 0.1 0.2 }} {{ sprig_addf 1 2 3.5 }} {{ sprig_addf }} {{ sprig_addf 1e20 1 }} {{ sprig_addf 0.1 0.2 0.3 }}
{{ sprig_subf 1.5 0.5 }} {{ sprig_subf 0.3 0.1 }} {{ sprig_subf 10 }} {{ sprig_subf 1 2 3 }}
{{ sprig_mulf 1.1 3 }} {{ sprig_mulf 0.1 0.1 }} {{ sprig_mulf 2 }} {{ sprig_mulf 1e200 1e200 }} {{ sprig_mulf 123456.789 987654.321 }}
{{ sprig_divf 1 3 }} {{ sprig_divf 2 3 }} {{ sprig_divf 10 4 }} {{ sprig_divf 1 3 3 }} {{ sprig_divf 22 7 }} {{ sprig_divf 1 7e10 }} {{ sprig_divf -2 3 }} {{ sprig_divf 100 }}
{{ sprig_addf 1.5 2 | printf "%T" }} {{ sprig_mulf 3 4 }} {{ sprig_divf 1e-10 3 }} {{ sprig_subf -0.0 0 }}
