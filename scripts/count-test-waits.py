#!/usr/bin/env python3
# Counts the time-based waits in the tests, for a before/after comparison: sleeps, timeouts used
# as waits, and polling (calls of wait_until/wait_for…/eventually…/poll_until…/until… helpers,
# and `loop`/`while` loops with a sleep in their body).
#
#   python3 scripts/count-test-waits.py            # table per file, sorted by total, then totals
#   python3 scripts/count-test-waits.py --json     # {"sleep":N,"timeout":N,"polling":N,"total":N,"files":{…}}
#   python3 scripts/count-test-waits.py --list     # also every counted call site, path:line
#   python3 scripts/count-test-waits.py --root DIR # another checkout (default: this repository)
#
# Scope: every .rs file under tests/, plus the `#[cfg(test)] mod NAME { … }` blocks in src/ (and
# whole files of `#[cfg(test)] mod NAME;` declarations). Comments and string/char literals are
# ignored. Categories (call sites; each occurrence in code counts once):
#   sleep   – `sleep(` / `sleep_until(` with any path (thread::, tokio::time::, …) or as a method
#   timeout – `timeout(` with any path or as a method (`.timeout(`), `recv_timeout(`, `wait_timeout(`
#   polling – calls of functions named wait_*, eventually*, poll_until*, until*
#             (their definitions, `fn wait_until(`, do not count), plus each `loop {…}` / `while … {…}`
#             that is the innermost loop/while around a sleep (one per loop; the sleep still counts
#             under sleep)
# Not counted: socket/client settings such as `connect_timeout(`, `set_read_timeout(`, and
# helpers with other names (e.g. `wait_ready(`). Python 3.11, standard library only.

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rust_source import LineIndex, blank_non_code, matching_close

DEFAULT_ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ("sleep", "timeout", "polling")

SLEEP_CALL = re.compile(r"(?<!\w)(?P<name>sleep|sleep_until)\s*\(")
TIMEOUT_CALL = re.compile(r"(?<!\w)(?P<name>timeout|recv_timeout|wait_timeout)\s*\(")
HELPER_CALL = re.compile(
    r"(?<!\w)(?P<name>(?:wait_|eventually|poll_until|until)\w*)"
    r"\s*(?:::\s*<[^(){};]*>\s*)?!?\s*\("
)
LOOP_KEYWORD = re.compile(r"(?<!\w)(?P<name>loop|while)(?!\w)")
DEFINITION_BEFORE = re.compile(r"(?<!\w)fn\s+$")

CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
OTHER_ATTRIBUTE = re.compile(r"\s*#\s*\[")
MODULE_ITEM = re.compile(r"\s*(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(?:r#)?(?P<name>\w+)\s*(?P<end>[{;])")
OUT_OF_LINE_MODULE = re.compile(r"(?<!\w)mod\s+(?:r#)?(?P<name>\w+)\s*;")

# ---------------------------------------------------------------------------------------------
# What is test code
# ---------------------------------------------------------------------------------------------


def test_regions(code):
    """Return ([(start, end)] of inline `#[cfg(test)] mod NAME { … }` blocks, [names of `mod NAME;`]).

    Other attributes may sit between `#[cfg(test)]` and the `mod` item.
    """
    regions = []
    out_of_line = []
    for attribute in CFG_TEST.finditer(code):
        position = attribute.end()
        while True:
            other = OTHER_ATTRIBUTE.match(code, position)
            if not other:
                break
            position = matching_close(code, other.end() - 1, "[", "]") + 1
        item = MODULE_ITEM.match(code, position)
        if not item:
            continue  # a test-only function, impl or use: not a module
        if item.group("end") == "{":
            regions.append((attribute.start(), matching_close(code, item.end() - 1) + 1))
        else:
            out_of_line.append(item.group("name"))
    return regions, out_of_line


def module_file(declaring_file, name):
    """Return the file of `mod NAME;` declared in `declaring_file`, or None if there is none."""
    if declaring_file.name in ("mod.rs", "lib.rs", "main.rs"):
        base = declaring_file.parent
    else:
        base = declaring_file.parent / declaring_file.stem
    for candidate in (base / f"{name}.rs", base / name / "mod.rs"):
        if candidate.is_file():
            return candidate
    return None


def scope(root):
    """Return {path: [(start, end)] test regions of its blanked code} for every file in scope.

    Whole files are (0, len). Files under tests/ are whole; in src/, the `#[cfg(test)]` inline
    module blocks, and whole files of `#[cfg(test)] mod NAME;` (and the modules those declare).
    """
    regions = {}
    whole_files = sorted((root / "tests").rglob("*.rs")) if (root / "tests").is_dir() else []
    for path in sorted((root / "src").rglob("*.rs")) if (root / "src").is_dir() else []:
        code = blank_non_code(path.read_text(encoding="utf-8"))
        inline, out_of_line = test_regions(code)
        if inline:
            regions[path] = inline
        for name in out_of_line:
            child = module_file(path, name)
            if child:
                whole_files.append(child)
    pending = list(whole_files)
    while pending:
        path = pending.pop()
        if path in regions and regions[path] == [(0, None)]:
            continue
        regions[path] = [(0, None)]
        if path.is_relative_to(root / "src"):
            code = blank_non_code(path.read_text(encoding="utf-8"))
            for item in OUT_OF_LINE_MODULE.finditer(code):
                child = module_file(path, item.group("name"))
                if child:
                    pending.append(child)
    return regions


# ---------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------


@dataclass
class Site:
    line: int
    category: str
    what: str


@dataclass
class FileCount:
    sites: list = field(default_factory=list)

    def count(self, category):
        """Return the number of sites of `category`."""
        return sum(1 for site in self.sites if site.category == category)

    def as_dict(self):
        """Return {"sleep":…, "timeout":…, "polling":…, "total":…}."""
        counts = {category: self.count(category) for category in CATEGORIES}
        counts["total"] = len(self.sites)
        return counts


def calls(code, pattern, in_scope):
    """Yield the matches of a call `pattern` in scope, leaving out definitions (`fn name(`)."""
    for match in pattern.finditer(code):
        if not in_scope(match.start()):
            continue
        if DEFINITION_BEFORE.search(code, max(0, match.start() - 12), match.start()):
            continue
        yield match


def loop_spans(code):
    """Return [(keyword offset, body open, body close, keyword)] of every `loop`/`while` in code."""
    spans = []
    for match in LOOP_KEYWORD.finditer(code):
        if match.group("name") == "loop":
            body = re.compile(r"\s*\{").match(code, match.end())
            if not body:
                continue
            open_index = body.end() - 1
        else:
            open_index = _while_body_open(code, match.end())
            if open_index is None:
                continue
        spans.append((match.start(), open_index, matching_close(code, open_index), match.group("name")))
    return spans


def _while_body_open(code, start):
    """Return the offset of the `{` opening a `while` body: the first `{` outside ( ) and [ ]."""
    depth = 0
    for i in range(start, len(code)):
        char = code[i]
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "{" and depth <= 0:
            return i
        elif char == ";" and depth <= 0:
            return None
    return None


def count_file(text, regions):
    """Count the wait sites of one file's `text` inside its test `regions`; return a FileCount."""
    code = blank_non_code(text)
    lines = LineIndex(code)
    spans = [(start, len(code) if end is None else end) for start, end in regions]

    def in_scope(offset):
        return any(start <= offset < end for start, end in spans)

    result = FileCount()
    sleeps = []
    for match in calls(code, SLEEP_CALL, in_scope):
        sleeps.append(match.start())
        result.sites.append(Site(lines.line(match.start()), "sleep", match.group("name") + "("))
    for match in calls(code, TIMEOUT_CALL, in_scope):
        result.sites.append(Site(lines.line(match.start()), "timeout", match.group("name") + "("))
    for match in calls(code, HELPER_CALL, in_scope):
        result.sites.append(Site(lines.line(match.start()), "polling", match.group("name") + "("))

    loops = [span for span in loop_spans(code) if in_scope(span[0])]
    polling_loops = set()
    for sleep in sleeps:
        around = [span for span in loops if span[1] < sleep < span[2]]
        if around:
            polling_loops.add(max(around, key=lambda span: span[1]))
    for keyword_offset, _open, _close, keyword in sorted(polling_loops):
        result.sites.append(Site(lines.line(keyword_offset), "polling", f"{keyword} with a sleep"))
    result.sites.sort(key=lambda site: site.line)
    return result


def count_all(root):
    """Return {relative path: FileCount} for every file in scope under `root`."""
    counts = {}
    for path, regions in scope(root).items():
        relative = path.relative_to(root).as_posix()
        counts[relative] = count_file(path.read_text(encoding="utf-8"), regions)
    return counts


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def totals(counts):
    """Return the summed {"sleep", "timeout", "polling", "total"} over all files."""
    summed = {category: 0 for category in (*CATEGORIES, "total")}
    for file_count in counts.values():
        for key, value in file_count.as_dict().items():
            summed[key] += value
    return summed


def print_table(counts, list_sites):
    """Print the per-file table (files with waits, by total), the totals, and optionally each site."""
    rows = sorted(
        ((path, c.as_dict()) for path, c in counts.items() if c.sites),
        key=lambda row: (-row[1]["total"], row[0]),
    )
    width = max([len(path) for path, _ in rows] + [len("file")])
    header = f"{'file':<{width}}  {'sleep':>5}  {'timeout':>7}  {'polling':>7}  {'total':>5}"
    print(header)
    print("-" * len(header))
    for path, row in rows:
        print(
            f"{path:<{width}}  {row['sleep']:>5}  {row['timeout']:>7}  "
            f"{row['polling']:>7}  {row['total']:>5}"
        )
    print("-" * len(header))
    summed = totals(counts)
    print(
        f"{'total':<{width}}  {summed['sleep']:>5}  {summed['timeout']:>7}  "
        f"{summed['polling']:>7}  {summed['total']:>5}"
    )
    print(f"({len(counts)} files in scope, {len(counts) - len(rows)} without waits)")
    if list_sites:
        print()
        for path in sorted(counts):
            for site in counts[path].sites:
                print(f"{path}:{site.line}: {site.category}: {site.what}")


def print_json(counts):
    """Print the totals and the per-file counts as JSON."""
    document = totals(counts)
    document["files"] = {path: counts[path].as_dict() for path in sorted(counts)}
    print(json.dumps(document, indent=2))


def main():
    parser = argparse.ArgumentParser(description="Count the time-based waits in the tests.")
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help=f"the repository (default: {DEFAULT_ROOT})"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--list", action="store_true", help="also list every counted site")
    args = parser.parse_args()
    root = args.root.resolve()
    if not (root / "tests").is_dir() and not (root / "src").is_dir():
        parser.error(f"{root} has neither tests/ nor src/")
    counts = count_all(root)
    if args.json:
        print_json(counts)
    else:
        print_table(counts, args.list)
    return 0


if __name__ == "__main__":
    sys.exit(main())
