"""Reading Rust source for the repository's scripts (`check-layering.py`,
`count-test-waits.py`): comments and literals blanked out without moving anything, matching
brackets, offsets to line numbers. Python 3.11, standard library only."""

import bisect
import re

RAW_STRING_START = re.compile(r'(?:b|c)?r(#*)"')
IDENTIFIER = re.compile(r"\w+")


def blank_non_code(text):
    """Return `text` with comments and the contents of string and char literals replaced by spaces.

    Newlines are kept and nothing moves, so offsets and line numbers in the result are those of
    the original. String and char delimiters are kept (`"crate::x"` becomes `"        "`).
    Handles line comments (`//`, `///`, `//!`), nested block comments, escapes, raw strings
    (`r"…"`, `r#"…"#`, `br"…"`), byte/C strings, char literals, and tells lifetimes and labels
    (`'a`, `'outer:`) from char literals.
    """
    out = list(text)
    length = len(text)

    def blank(start, end):
        for k in range(start, end):
            if out[k] != "\n":
                out[k] = " "

    i = 0
    while i < length:
        char = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = length if end == -1 else end
            blank(i, end)
            i = end
        elif text.startswith("/*", i):
            end = _block_comment_end(text, i)
            blank(i, end)
            i = end
        elif char == '"':
            end = _string_end(text, i)
            blank(i + 1, max(i + 1, end - 1))
            i = end
        elif char == "'":
            end = _char_literal_end(text, i)
            if end is None:  # a lifetime or a loop label
                i += 1
            else:
                blank(i + 1, end - 1)
                i = end
        elif char.isalnum() or char == "_":
            raw = RAW_STRING_START.match(text, i)
            if raw:
                hashes = raw.group(1)
                content_start = raw.end()
                close = text.find('"' + hashes, content_start)
                close = length if close == -1 else close
                blank(content_start, close)
                i = min(length, close + 1 + len(hashes))
            else:
                i = IDENTIFIER.match(text, i).end()
        else:
            i += 1
    return "".join(out)


def _block_comment_end(text, start):
    """Return the offset just after the (possibly nested) block comment opening at `start`."""
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def _string_end(text, start):
    """Return the offset just after the string literal whose opening quote is at `start`."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    return len(text)


def _char_literal_end(text, start):
    """Return the offset after the char literal opening at `start`, or None for a lifetime/label."""
    if start + 1 >= len(text):
        return None
    if text[start + 1] == "\\":
        # '\n', '\'', '\\', '\x7f', '\u{1F600}': the closing quote follows the escape.
        close = text.find("'", start + 3, start + 14)
        return None if close == -1 else close + 1
    if start + 2 < len(text) and text[start + 2] == "'" and text[start + 1] != "\n":
        return start + 3
    return None


def matching_close(code, open_index, opener="{", closer="}"):
    """Return the offset of the bracket matching the one at `open_index` in blanked code (or the end)."""
    depth = 0
    for i in range(open_index, len(code)):
        if code[i] == opener:
            depth += 1
        elif code[i] == closer:
            depth -= 1
            if depth == 0:
                return i
    return len(code)


class LineIndex:
    """Maps offsets in a text to 1-based line numbers."""

    def __init__(self, text):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, offset):
        """Return the 1-based line number of `offset`."""
        return bisect.bisect_right(self.starts, offset)
