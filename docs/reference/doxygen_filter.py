#!/usr/bin/env python3
"""Doxygen INPUT_FILTER for taskport's public headers: reads the comments as they are written.

    doxygen_filter.py HEADER      (prints the filtered text; Doxygen calls it for every input)

taskport's headers document their names in plain `//` comments (the project's style); `///`
lines are Doxygen's own. So that the reference is made from the comments the code already has,
without a second copy in every header, this filter (which changes nothing on disk) turns:
  - a whole-line `// text` comment after the file's `#pragma once` into `/// text` (it then
    documents the declaration below it, as a reader takes it);
  - a trailing `code;  // text` (or after `,` `{` `}`) into `code;  ///< text` (the member to
    its left);
  - the file's top comment (the lines before `#pragma once`) into a `\\file` block.
Every line keeps its number, so Doxygen's warnings point at the real line.
"""
import re
import sys

WHOLE = re.compile(r"^(\s*)//(?![/!])(\s?)(.*)$")
TRAILING = re.compile(r"^(\s*\S.*?[;,{}])(\s+)//(?![/!])(\s?)(.*)$")


def filter_text(text: str) -> str:
    out = []
    before_pragma = "#pragma once" in text
    first = True
    in_block = False  # inside a /* */ comment: left alone
    for line in text.splitlines():
        stripped = line.strip()
        if before_pragma:
            if stripped == "#pragma once":
                before_pragma = False
                out.append(line)
                continue
            m = WHOLE.match(line)
            if m:
                body = m.group(3)
                # The first line names the file: "\file" takes the path as its argument and
                # Doxygen keeps the rest of the top comment as the file's description.
                out.append(("//! \\file " if first else "//! ") + body)
                first = False
                continue
            out.append(line)
            continue
        if "/*" in line and "*/" not in line:
            in_block = True
        if in_block:
            if "*/" in line:
                in_block = False
            out.append(line)
            continue
        m = WHOLE.match(line)
        if m:
            out.append(f"{m.group(1)}///{m.group(2)}{m.group(3)}")
            continue
        m = TRAILING.match(line)
        if m and '"' not in m.group(1).split("//")[-1]:
            out.append(f"{m.group(1)}{m.group(2)}///<{m.group(3)}{m.group(4)}")
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(filter_text(f.read()))


if __name__ == "__main__":
    main()
