"""The one escaping rule for plain text written into a script or a commented file we generate.

A recipe path, a run name or a title lands in comments (`# Rendered ... from <recipe>`) and in double-quoted
strings (`echo "... (<link>)"`). A newline there ends the comment and starts a command; `$`, backquotes and `"`
expand or end a string. Shell values are shlex-quoted where they are built (engines/plan.py); this is for text that
is only meant to be read. A character that is not printable (newlines, other controls, bidi overrides) or that a
double-quoted string would expand or end at (`$`, a backquote, `"`, `\\`) is written as a `\\xNN` / `\\uNNNN`
escape, so the text stays on its line, readable, and does nothing.
"""

from __future__ import annotations

import shlex

_EXPANDS = frozenset('$`"\\')  # what a double-quoted string expands or ends at


def script_text(text: object) -> str:
    """`text` as inert, single-line script text (see the module docstring)."""
    out = []
    for ch in str(text):
        if ch.isprintable() and ch not in _EXPANDS:
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def shell_quote(value: str) -> str:
    """A shell word for `value` that fits on one line: shlex.quote, or bash's $'...' when `value` holds a control
    or other non-printable character (a newline inside '...' would split the script's lines, and the indentation
    added to continued commands would then change the value)."""
    if all(ch.isprintable() for ch in value):
        return shlex.quote(value)
    out = []
    for ch in value:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "$'" + "".join(out) + "'"
