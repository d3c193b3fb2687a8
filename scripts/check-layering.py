#!/usr/bin/env python3
# Checks the crate's module layering: no top-level module of `src/` may reach a module of a
# higher layer. The layers are the numbered list after the `//! Layers` line of the crate doc
# comment in src/lib.rs (lowest first; each item's backquoted names before its ` — ` or ` - `
# description are that layer's modules).
#
#   python3 scripts/check-layering.py              # check the repository's src/
#   python3 scripts/check-layering.py --src DIR    # check another source tree
#   python3 scripts/check-layering.py --graph      # also print the module dependency edges
#   python3 scripts/check-layering.py --self-test  # run the parser's own checks
#
# A reference is `crate::X`, `$crate::X`, `use crate::{X, Y::z}` or a `super::` path that
# reaches the crate root (from src/NAME.rs, src/NAME/mod.rs, src/NAME/sub.rs via
# `super::super::`, or from inline modules), anywhere in code, `#[cfg]`-guarded code and tests
# included; comments (doc comments too) and string/char literals are ignored. Mentions of the
# same module on the same line count once. src/lib.rs and src/main.rs are not checked.
#
# Exit status: 0 when clean, 1 on any violation or a mismatch between the layer list and the
# modules in src/, 2 on bad usage. Python 3.11, standard library only.

import argparse
import re
import sys
import tempfile
import unittest
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rust_source import LineIndex, blank_non_code, matching_close

DEFAULT_SRC = Path(__file__).resolve().parent.parent / "src"

# ---------------------------------------------------------------------------------------------
# The layer list in src/lib.rs
# ---------------------------------------------------------------------------------------------


class LayerSpecError(Exception):
    """The `//! Layers` block is missing or malformed."""


@dataclass
class Layer:
    number: int
    modules: list
    line: int  # line of the item in lib.rs


LAYERS_START = re.compile(r"^\s*//!\s*Layers\b")
LAYER_ITEM = re.compile(r"^(\d+)\.\s+(.*)$")
DESCRIPTION_SEPARATORS = (" — ", " – ", " - ")
BACKQUOTED_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def parse_layers(lib_text):
    """Return the layers declared in the crate doc comment, lowest first, as `Layer`s.

    The block starts at a `//! Layers` line. Lines before the first numbered item continue the
    intro; then each `//! N. …` line is a layer, indented lines continue the item above, blank
    `//!` lines are skipped, and the first other line ends the block.
    Raises LayerSpecError when there is no block, a layer names no module, the numbers do not
    increase, or a module is listed twice.
    """
    lines = lib_text.splitlines()
    start = next((i for i, line in enumerate(lines) if LAYERS_START.match(line)), None)
    if start is None:
        raise LayerSpecError("no `//! Layers` block in the crate doc comment")

    items = []  # [number, text, line]
    for index in range(start + 1, len(lines)):
        stripped = lines[index].lstrip()
        if not stripped.startswith("//!"):
            break
        body = stripped[3:]
        body = body[1:] if body.startswith(" ") else body
        if not body.strip():
            continue
        item = LAYER_ITEM.match(body)
        if item:
            items.append([int(item.group(1)), item.group(2), index + 1])
        elif not items:
            continue  # the intro sentence goes on
        elif body[0].isspace():
            items[-1][1] += " " + body.strip()  # a wrapped item
        else:
            break
    if not items:
        raise LayerSpecError(f"the `//! Layers` block (lib.rs:{start + 1}) has no numbered items")

    layers = []
    seen = {}
    for number, text, line in items:
        names = BACKQUOTED_NAME.findall(_before_description(text))
        if not names:
            raise LayerSpecError(f"lib.rs:{line}: layer {number} names no module")
        if layers and number <= layers[-1].number:
            raise LayerSpecError(
                f"lib.rs:{line}: layer {number} follows layer {layers[-1].number}; "
                "the numbers must increase"
            )
        for name in names:
            if name in seen:
                raise LayerSpecError(
                    f"lib.rs:{line}: `{name}` is listed in layer {seen[name]} and in layer {number}"
                )
            seen[name] = number
        layers.append(Layer(number, names, line))
    return layers


def _before_description(item_text):
    """Return the part of a layer item before its first ` — ` / ` - ` separator (or all of it)."""
    cut = len(item_text)
    for separator in DESCRIPTION_SEPARATORS:
        found = item_text.find(separator)
        if found != -1:
            cut = min(cut, found)
    return item_text[:cut]


# ---------------------------------------------------------------------------------------------
# Modules and the references between them
# ---------------------------------------------------------------------------------------------

NOT_MODULES = {"lib.rs", "main.rs"}
NOT_MODULE_DIRS = {"bin"}  # Cargo's extra binaries, not modules of the library


def discover_modules(src_dir):
    """Return {top-level module name: [its .rs files]} for `src_dir`.

    A module is a `NAME.rs` file (other than lib.rs and main.rs) or a `NAME/` directory holding
    .rs files (other than `bin/`); both forms of one module share an entry.
    """
    modules = {}
    for entry in sorted(src_dir.iterdir()):
        if entry.is_file() and entry.suffix == ".rs" and entry.name not in NOT_MODULES:
            modules.setdefault(entry.stem, []).append(entry)
        elif entry.is_dir() and entry.name not in NOT_MODULE_DIRS:
            files = sorted(entry.rglob("*.rs"))
            if files:
                modules.setdefault(entry.name, []).extend(files)
    return modules


def module_path_of_file(src_dir, path):
    """Return the module path of a file: src/a.rs → [a], src/a/mod.rs → [a], src/a/b.rs → [a, b]."""
    parts = list(path.relative_to(src_dir).parts)
    last = parts.pop()
    if last != "mod.rs":
        parts.append(last[: -len(".rs")])
    return parts


PATH_START = re.compile(
    r"(?<![\w$:])(?P<root>\$?crate|super(?:\s*::\s*super)*)\s*::\s*"
    r"(?:(?:r#)?(?P<name>[A-Za-z_]\w*)|(?P<group>\{))"
)
INLINE_MODULE = re.compile(r"(?<![\w$])mod\s+(?:r#)?[A-Za-z_]\w*\s*\{")
GROUP_ELEMENT_NAME = re.compile(r"\s*(?:r#)?([A-Za-z_]\w*)")


def find_root_references(code, file_depth):
    """Yield (offset, name) for each path in blanked `code` that names an item of the crate root.

    `crate::X` and `$crate::X` always do; `super::…::X` does when its `super`s climb exactly to
    the root from where it stands (`file_depth` is the length of the file's module path; inline
    `mod x { … }` blocks add one each). A `{…}` group yields each of its top-level names.
    """
    inline_spans = [
        (m.start(), matching_close(code, m.end() - 1)) for m in INLINE_MODULE.finditer(code)
    ]
    for match in PATH_START.finditer(code):
        root = match.group("root")
        if root.endswith("crate"):
            at_root = True
        else:
            depth = file_depth + sum(1 for a, b in inline_spans if a < match.start() < b)
            at_root = root.count("super") == depth
        if not at_root:
            continue
        if match.group("name"):
            yield match.start("name"), match.group("name")
        else:
            yield from _group_names(code, match.start("group"))


def _group_names(code, open_index):
    """Yield (offset, name) for the first segment of each element of the `{…}` group at `open_index`."""
    close = matching_close(code, open_index)
    element_start = open_index + 1
    depth = 0
    for i in range(open_index + 1, close + 1):
        char = code[i] if i < close else ","
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            name = GROUP_ELEMENT_NAME.match(code, element_start, i)
            if name and name.group(1) not in ("self", "super", "crate"):
                yield name.start(1), name.group(1)
            element_start = i + 1


@dataclass(frozen=True)
class Reference:
    path: Path
    line: int
    source: str  # the top-level module the file belongs to
    target: str  # the top-level module it names


def references_in_file(src_dir, path, module_names):
    """Return the cross-module `Reference`s of one file, one per (line, target module)."""
    text = path.read_text(encoding="utf-8")
    code = blank_non_code(text)
    module_path = module_path_of_file(src_dir, path)
    source = module_path[0]
    lines = LineIndex(code)
    found = []
    for offset, name in find_root_references(code, len(module_path)):
        if name in module_names and name != source:
            reference = Reference(path, lines.line(offset), source, name)
            if reference not in found:
                found.append(reference)
    return found


# ---------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------


def check(src_dir, show_graph=False, out=sys.stdout):
    """Check `src_dir` against the layers in its lib.rs, print the findings, return the exit status."""
    lib = src_dir / "lib.rs"
    if not lib.is_file():
        print(f"error: {lib} not found", file=out)
        return 1
    try:
        layers = parse_layers(lib.read_text(encoding="utf-8"))
    except LayerSpecError as error:
        print(f"error: {lib}: {error}", file=out)
        return 1
    layer_of = {name: layer.number for layer in layers for name in layer.modules}
    modules = discover_modules(src_dir)
    shown_root = src_dir.name  # paths print as src/…, relative to the tree's parent

    def shown(path):
        return f"{shown_root}/{path.relative_to(src_dir).as_posix()}"

    errors = []
    for name, files in modules.items():
        if name not in layer_of:
            where = shown(files[0]) if files[0].parent == src_dir else f"{shown_root}/{name}/"
            errors.append(f"error: module `{name}` ({where}) is in no layer of {shown(lib)}")
    for layer in layers:
        for name in layer.modules:
            if name not in modules:
                errors.append(
                    f"error: {shown(lib)}:{layer.line}: layer {layer.number} lists `{name}`, "
                    f"but there is no {shown_root}/{name}.rs or {shown_root}/{name}/"
                )

    references = []
    known = set(modules) | set(layer_of)
    for files in modules.values():
        for path in files:
            references.extend(references_in_file(src_dir, path, known))

    violations = [
        r
        for r in references
        if r.source in layer_of and r.target in layer_of and layer_of[r.target] > layer_of[r.source]
    ]

    if show_graph:
        print_graph(references, layer_of, out)
    for r in violations:
        print(
            f"{shown(r.path)}:{r.line}: {r.source} (layer {layer_of[r.source]}) uses "
            f"{r.target} (layer {layer_of[r.target]})",
            file=out,
        )
    for error in errors:
        print(error, file=out)

    if violations:
        pairs = Counter((r.source, r.target) for r in violations)
        print(
            f"{len(violations)} layering violation(s) in {len(pairs)} module pair(s):", file=out
        )
        for (source, target), count in sorted(pairs.items(), key=lambda p: _pair_key(p, layer_of)):
            print(
                f"  {source} (layer {layer_of[source]}) -> {target} (layer {layer_of[target]}): "
                f"{count} reference(s)",
                file=out,
            )
    if errors:
        print(f"{len(errors)} error(s) in the layer list of {shown(lib)}", file=out)
    if violations or errors:
        return 1
    print(
        f"ok: {len(modules)} modules in {len(layers)} layers, "
        f"{len(references)} cross-module references",
        file=out,
    )
    return 0


def _pair_key(item, layer_of):
    """Sort key for ((source, target), count): by the source's layer, then the names."""
    (source, target), _count = item
    return (layer_of.get(source, 0), source, layer_of.get(target, 0), target)


def print_graph(references, layer_of, out):
    """Print each module dependency edge with its number of references, violations marked."""
    edges = Counter((r.source, r.target) for r in references)
    print(f"module dependencies ({len(edges)} edges, {len(references)} references):", file=out)
    for (source, target), count in sorted(edges.items(), key=lambda p: _pair_key(p, layer_of)):
        source_layer = layer_of.get(source, "?")
        target_layer = layer_of.get(target, "?")
        upward = (
            source in layer_of and target in layer_of and layer_of[target] > layer_of[source]
        )
        mark = "   <- VIOLATION" if upward else ""
        print(
            f"  {source} ({source_layer}) -> {target} ({target_layer}): {count}{mark}", file=out
        )


# ---------------------------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------------------------

SELF_TEST_LIB = """\
//! Test crate.
//!
//! Layers, lowest first (checked by `scripts/check-layering.py`): a module may use modules of
//! its own layer and of lower ones, never of a higher one.
//!
//! 1. `low`, `other` — leaf utilities, unlike `high`
//! 2. `mid` - the middle, see `top`
//! 3. `high`,
//!    `top`
//!
//! Some other paragraph naming `nothing`.
#![forbid(unsafe_code)]
pub mod low;
"""


class SelfTest(unittest.TestCase):
    """Checks of the lexer, the layer parser and the reference finder on small synthetic cases."""

    def refs(self, source, depth=1):
        """Return [(line, name)] of the root references in a snippet at module depth `depth`."""
        code = blank_non_code(source)
        lines = LineIndex(code)
        return [(lines.line(o), n) for o, n in find_root_references(code, depth)]

    def test_blanking_keeps_offsets(self):
        source = 'let a = "x // y"; // crate::c\nlet b = \'"\'; /* a /* b */ c */ d'
        code = blank_non_code(source)
        self.assertEqual(len(code), len(source))
        self.assertEqual(code.count("\n"), 1)
        self.assertNotIn("crate", code)
        self.assertTrue(code.rstrip().endswith("d"))

    def test_grouped_multiline_use(self):
        source = "use crate::{\n    mid,\n    high::{x, y::{z}},\n    low::Thing as T,\n    self,\n};\n"
        self.assertEqual(self.refs(source), [(2, "mid"), (3, "high"), (4, "low")])

    def test_simple_and_visibility_uses(self):
        source = "use crate::mid::X;\npub use crate::high;\npub(crate) use crate::low::{a, b};\n"
        self.assertEqual(self.refs(source), [(1, "mid"), (2, "high"), (3, "low")])

    def test_inline_paths(self):
        source = (
            "fn f() -> crate::mid::T {\n"
            "    let x = crate :: high::g(crate::low::h());\n"
            "    #[cfg(test)]\n"
            "    let _ = $crate::top::m!();\n"
            "}\n"
        )
        self.assertEqual(
            self.refs(source), [(1, "mid"), (2, "high"), (2, "low"), (4, "top")]
        )

    def test_strings_and_comments_do_not_count(self):
        source = (
            "// crate::high\n"
            "/// See [`crate::high::X`].\n"
            "//! [crate::high]\n"
            "/* crate::high\n   crate::top */\n"
            'let s = "crate::high"; // crate::top\n'
            'let u = "http://host"; let v = crate::mid::x;\n'
            'let r = r#"a "quoted" crate::high"#;\n'
            'let m = "line one\n    crate::high";\n'
            "let c = '\"'; let d = crate::low::y; let e = b'\\'';\n"
            "fn g<'a>(x: &'a str) -> &'a str { crate::other::z(x) }\n"
        )
        self.assertEqual(self.refs(source), [(7, "mid"), (11, "low"), (12, "other")])

    def test_super_from_top_level_file(self):
        # src/mid.rs or src/mid/mod.rs: depth 1, `super` is the crate root.
        source = "use super::high;\nuse super::{low, top::x};\nfn f() { super::other::g() }\n"
        self.assertEqual(
            self.refs(source, depth=1), [(1, "high"), (2, "low"), (2, "top"), (3, "other")]
        )

    def test_super_from_submodule_file(self):
        # src/mid/sub.rs: depth 2, `super` is `mid`, `super::super` the root.
        source = "use super::sibling;\nuse super::super::high::X;\nuse super :: super :: {low};\n"
        self.assertEqual(self.refs(source, depth=2), [(2, "high"), (3, "low")])

    def test_super_inside_inline_module(self):
        # src/mid.rs: inside `mod tests`, `super` is `mid` again.
        source = (
            "use super::low;\n"
            "#[cfg(test)]\n"
            "mod tests {\n"
            "    use super::*;\n"
            "    use super::high;\n"
            "    fn f() { super::super::top::g(); let s = \"}\"; }\n"
            "}\n"
            "fn g() { super::other::h() }\n"
        )
        self.assertEqual(self.refs(source, depth=1), [(1, "low"), (6, "top"), (8, "other")])

    def test_parse_layers(self):
        layers = parse_layers(SELF_TEST_LIB)
        self.assertEqual(
            [(l.number, l.modules) for l in layers],
            [(1, ["low", "other"]), (2, ["mid"]), (3, ["high", "top"])],
        )

    def test_parse_layers_errors(self):
        with self.assertRaises(LayerSpecError):
            parse_layers("//! No layers here.\n")
        with self.assertRaises(LayerSpecError):
            parse_layers("//! Layers:\n//! 1. `a`\n//! 1. `b`\n")
        with self.assertRaises(LayerSpecError):
            parse_layers("//! Layers:\n//! 1. `a`\n//! 2. `a`\n")
        with self.assertRaises(LayerSpecError):
            parse_layers("//! Layers:\n//! 1. `a`\n//! 2. nothing quoted\n")

    def write_tree(self, root, files):
        """Create `files` ({relative path: text}) under `root`/src and return the src path."""
        src = Path(root) / "src"
        for relative, text in files.items():
            path = src / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return src

    def run_check(self, files, graph=False):
        """Run `check` on a synthetic tree; return (exit status, output lines)."""
        with tempfile.TemporaryDirectory() as root:
            src = self.write_tree(root, files)

            class Capture(list):
                def write(self, text):
                    self.append(text)

            captured = Capture()
            status = check(src, show_graph=graph, out=captured)
            return status, "".join(captured).splitlines()

    def test_check_finds_violations(self):
        files = {
            "lib.rs": SELF_TEST_LIB,
            "main.rs": "fn main() { crate::top::run() }\n",
            "low.rs": "use crate::mid;\n// crate::top\nfn f() { crate::low::g() }\n",
            "other.rs": "",
            "mid/mod.rs": "mod sub;\nuse super::low;\n",
            "mid/sub.rs": "fn f() {\n    super::super::high::g();\n}\n",
            "high.rs": "use crate::{mid, low, top};\n",
            "top/mod.rs": "",
        }
        status, lines = self.run_check(files)
        self.assertEqual(status, 1)
        self.assertEqual(
            lines[:2],
            [
                "src/low.rs:1: low (layer 1) uses mid (layer 2)",
                "src/mid/sub.rs:2: mid (layer 2) uses high (layer 3)",
            ],
        )
        self.assertIn("2 layering violation(s) in 2 module pair(s):", lines)

    def test_check_clean_and_graph(self):
        files = {
            "lib.rs": SELF_TEST_LIB,
            "low.rs": "",
            "other.rs": "use crate::low;\n",
            "mid.rs": "use crate::{low, other};\nfn f() { crate::low::x(); }\n",
            "high.rs": "use super::mid;\n",
            "top/mod.rs": "use crate::high;\n",
        }
        status, lines = self.run_check(files, graph=True)
        self.assertEqual(status, 0)
        self.assertIn("  mid (2) -> low (1): 2", lines)
        self.assertEqual(lines[-1], "ok: 5 modules in 3 layers, 6 cross-module references")

    def test_check_unlisted_and_missing_modules(self):
        files = {
            "lib.rs": SELF_TEST_LIB,
            "low.rs": "",
            "other.rs": "",
            "mid.rs": "",
            "high.rs": "",
            "extra/mod.rs": "",
        }
        status, lines = self.run_check(files)
        self.assertEqual(status, 1)
        self.assertIn("error: module `extra` (src/extra/) is in no layer of src/lib.rs", lines)
        self.assertTrue(any("lists `top`, but there is no src/top.rs" in line for line in lines))


def run_self_test():
    """Run the SelfTest cases; return the exit status."""
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(SelfTest)
    result = unittest.TextTestRunner(verbosity=1).run(suite)
    return 0 if result.wasSuccessful() else 1


def main():
    parser = argparse.ArgumentParser(
        description="Check that no module of the crate uses a module of a higher layer."
    )
    parser.add_argument(
        "--src", type=Path, default=DEFAULT_SRC, help=f"the crate's src directory (default: {DEFAULT_SRC})"
    )
    parser.add_argument("--graph", action="store_true", help="print the module dependency edges")
    parser.add_argument("--self-test", action="store_true", help="run the script's own checks")
    args = parser.parse_args()
    if args.self_test:
        return run_self_test()
    if not args.src.is_dir():
        parser.error(f"{args.src} is not a directory")
    return check(args.src.resolve(), show_graph=args.graph)


if __name__ == "__main__":
    sys.exit(main())
