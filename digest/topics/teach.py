"""Teaching the grouper: ``digest topics add-example`` edits the topics file's text in place.

The file is the user's: its comments, order and layout are kept; only the one examples list
changes, and the result is parsed and compared before it replaces the file.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from digest.errors import ConfigError
from digest.fileio import write_atomic
from digest.identity import normalise_title
from digest.topics.taxonomy import load_taxonomy


def add_example(path: Path, topic: str, title: str) -> None:
    """Append ``title`` to ``topic``'s examples in the topics file, keeping the rest of its text.

    The edit is checked by parsing the result before the file is replaced.  ConfigError if the
    topic is unknown, the title is an example of another topic, or the file cannot be edited.
    """
    title = " ".join(title.split())
    if not title:
        raise ConfigError(f"{path}: an example needs a title")
    taxonomy = load_taxonomy(path)
    codes = taxonomy.codes()
    if topic not in codes:
        raise ConfigError(
            f"{path}: no topic {topic!r}", hint=f"topics in this file: {', '.join(codes)}"
        )
    key = normalise_title(title)
    for other in taxonomy.topics:
        if any(normalise_title(e) == key for e in other.examples):
            if other.code == topic:
                return
            raise ConfigError(
                f"{path}: {title!r} is already an example of {other.code!r}",
                hint=f"remove it from {other.code!r} first",
            )
    text = path.read_text(encoding="utf-8")
    edited = _append_example(text, codes.index(topic), title, path)
    expected = tomllib.loads(text)
    expected["topics"][codes.index(topic)].setdefault("examples", []).append(title)
    try:
        ok = tomllib.loads(edited) == expected
    except tomllib.TOMLDecodeError:
        ok = False
    if not ok:
        raise ConfigError(
            f"{path}: topics[{codes.index(topic)}].examples: cannot add the example to this layout",
            hint="add the title to the topic's examples list by hand",
        )
    write_atomic(path, edited)


def _append_example(text: str, index: int, title: str, path: Path) -> str:
    """The text with ``title`` added to the examples of the ``index``-th [[topics]] table."""
    headers = [m.start() for m in re.finditer(r"(?m)^[ \t]*\[\[[ \t]*topics[ \t]*\]\]", text)]
    if len(headers) <= index:
        raise ConfigError(
            f"{path}: topics[{index}]: cannot edit this file's layout",
            hint="write each topic as a [[topics]] table, then add the example again",
        )
    start = headers[index]
    after_header = text.index("\n", start) + 1 if "\n" in text[start:] else len(text)
    next_table = re.compile(r"(?m)^[ \t]*\[").search(text, after_header)
    end = next_table.start() if next_table else len(text)
    item = _toml_string(title)
    found = re.compile(r"(?m)^[ \t]*examples[ \t]*=[ \t]*\[").search(text, start, end)
    if found is None:
        # No examples key yet: add one after the table's last key line.
        body = text[start:end].rstrip()
        insert_at = start + len(body)
        return f"{text[:insert_at]}\nexamples = [{item}]{text[insert_at:]}"
    open_at = found.end() - 1
    close_at = _closing_bracket(text, open_at, path)
    inside = text[open_at + 1 : close_at]
    content = "".join(_code(line) for line in inside.split("\n")).strip()
    if "\n" not in inside:
        sep = "" if not content else ", " if not content.endswith(",") else " "
        new_inside = f"{inside.rstrip()}{sep}{item}" if content else item
        return text[: open_at + 1] + new_inside + text[close_at:]
    # A multi-line array: one item per line, indented like the others, before the "]" line.
    lines = inside.split("\n")
    indent = next(
        (line[: len(line) - len(line.lstrip())] for line in lines if line.strip() and not line.strip().startswith("#")),
        "    ",
    )
    last_item = max((i for i, line in enumerate(lines) if _code(line).strip()), default=None)
    if last_item is not None:
        line = lines[last_item]
        code_part = _code(line).rstrip()
        if not code_part.endswith(","):
            lines[last_item] = code_part + "," + line[len(code_part):]
        lines.insert(last_item + 1, f"{indent}{item},")
    else:
        lines.insert(1, f"{indent}{item},")
    return text[: open_at + 1] + "\n".join(lines) + text[close_at:]


def _toml_string(value: str) -> str:
    """``value`` as a TOML basic string."""
    out = ['"']
    for ch in value:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _skip_string(text: str, i: int) -> int:
    """The position after the TOML string that starts at ``i``."""
    quote = text[i] * 3 if text.startswith(text[i] * 3, i) else text[i]
    j = i + len(quote)
    while j < len(text) and not text.startswith(quote, j):
        j += 2 if quote[0] == '"' and text[j] == "\\" else 1
    return j + len(quote)


def _code(line: str) -> str:
    """One line of TOML without its comment."""
    i = 0
    while i < len(line):
        if line[i] in "\"'":
            i = _skip_string(line, i)
        elif line[i] == "#":
            return line[:i]
        else:
            i += 1
    return line


def _closing_bracket(text: str, open_at: int, path: Path) -> int:
    """Position of the "]" closing the array opened at ``open_at`` (strings, comments skipped)."""
    depth, i = 0, open_at
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            i = _skip_string(text, i)
            continue
        if ch == "#":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ConfigError(f"{path}: unterminated examples array")


