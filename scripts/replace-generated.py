#!/usr/bin/env python3
"""Replaces the generated block between `<!-- NAME:start -->` and `<!-- NAME:end -->` in FILE
with TEXT: the one writer behind the tables that scripts regenerate (reliability-table.sh,
hostile-table.sh). Fails, naming the file and the markers, when they are missing.

    scripts/replace-generated.py FILE NAME TEXT
"""
import pathlib
import re
import sys

path, name, table = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
text = path.read_text()
start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
if not pattern.search(text):
    sys.exit(f"{path} has no {start} ... {end} markers: put them where the table belongs")
path.write_text(pattern.sub(lambda _: f"{start}\n{table}\n{end}", text))
