#!/usr/bin/env python3
"""Prints the fenced code block that follows a marker comment in a Markdown file.

    readme_block.py README.md api-tour [OUTPUT]

The marker is `<!-- NAME -->` on a line of its own; the block is the first ``` fence after it.
Used by .ci/run, which runs the README's test command and sample command as written there, so
the README cannot drift from the code. (The README's and docs/' C++ blocks are compiled and run
by docs/doc_blocks.py, from docs/meson.build.)
"""
import sys


def block(path: str, name: str) -> str:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    marker = f"<!-- {name} -->"
    try:
        i = next(n for n, line in enumerate(lines) if line.strip() == marker)
    except StopIteration:
        sys.exit(f"{path}: no '{marker}' line")
    i += 1
    while i < len(lines) and not lines[i].lstrip().startswith("```"):
        i += 1
    if i == len(lines):
        sys.exit(f"{path}: no fenced block after '{marker}'")
    out = []
    for line in lines[i + 1:]:
        if line.lstrip().startswith("```"):
            return "\n".join(out) + "\n"
        out.append(line)
    sys.exit(f"{path}: the block after '{marker}' is not closed")


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    text = block(sys.argv[1], sys.argv[2])
    if len(sys.argv) == 4:
        with open(sys.argv[3], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
