#!/usr/bin/env python3
"""Turns every ```cpp block of a Markdown file into one C++ translation unit, so the suite can
compile (and run) the documentation's code as it stands.

    doc_blocks.py [--without TAG,...] DOC.md OUTPUT.cpp

Each block is one of (an HTML comment on the line(s) just before the fence says which; GitHub
does not show it):

  - a program: a block with `int main()` and no marker. Compiled and run by the test; it fails
    when main returns non-zero or throws.
  - a program not run: `<!-- no-run -->` (it needs a peer on the network, or runs for ever).
  - a fragment: `<!-- fragment -->` (declarations at namespace scope, compiled only) or
    `<!-- fragment: body -->` (statements, compiled as the body of a coroutine
    `taskport::task<void> f(taskport::runtime& rt)`), or `<!-- fragment: body(PARAMS) -->` with
    those parameters instead. Fragments see <taskport/taskport.hpp>, the usual standard headers,
    `namespace io = taskport::io;` and `std::chrono_literals`.

A marker's further lines, up to `-->`, are a prelude: C++ placed before the block at namespace
scope (the declarations a fragment takes from its surroundings). `needs: TAG` in a marker (tls,
posix) leaves the block out when the build lacks it (--without). Markers are separated by `;`
on the comment's first line: `<!-- fragment: body; needs: posix`. Any other ```cpp block (no
main, no marker) is an error: every C++ block in the docs is compiled.

Each block goes in its own namespace (block_<line>), its #include lines hoisted to the top,
with #line directives so a compiler error names the Markdown file and line. main() becomes that
namespace's doc_main(); the generated main() runs every program in order and reports each.
"""
import os
import re
import sys

FRAGMENT_HEADERS = [
    "taskport/taskport.hpp", "algorithm", "atomic", "chrono", "cstddef", "cstdint", "cstdio",
    "exception", "functional", "iostream", "memory", "mutex", "optional", "span", "stdexcept",
    "string", "string_view", "system_error", "thread", "utility", "vector",
]
MAIN = re.compile(r"^(\s*)int\s+main\s*\(\s*\)")


class Block:
    def __init__(self, line, code, markers, prelude, prelude_line):
        self.line = line            # 1-based line of the first code line
        self.code = code
        self.markers = markers      # key -> argument ('' when none)
        self.prelude = prelude
        self.prelude_line = prelude_line


def parse_marker(lines, fence):
    """The HTML comment ending on the line before `fence` (index), if any."""
    end = fence - 1
    if end < 0 or not lines[end].rstrip().endswith("-->"):
        return {}, [], 0
    start = end
    while start >= 0 and "<!--" not in lines[start]:
        start -= 1
    if start < 0:
        return {}, [], 0
    first = lines[start].split("<!--", 1)[1]
    if start == end:
        first = first.rsplit("-->", 1)[0]
        prelude = []
    else:
        prelude = lines[start + 1:end]
        last = lines[end].rsplit("-->", 1)[0]
        if last.strip():
            prelude.append(last)
    markers = {}
    for part in first.split(";"):
        part = part.strip()
        if not part:
            continue
        key, _, arg = part.partition(":")
        markers[key.strip()] = arg.strip()
    return markers, prelude, start + 2


def blocks(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*```(\S*)", lines[i])
        if not m:
            i += 1
            continue
        lang = m.group(1).lower()
        j = i + 1
        while j < len(lines) and not lines[j].lstrip().startswith("```"):
            j += 1
        if j == len(lines):
            sys.exit(f"{path}:{i + 1}: code block not closed")
        if lang in ("cpp", "c++", "cxx"):
            markers, prelude, prelude_line = parse_marker(lines, i)
            out.append(Block(i + 2, lines[i + 1:j], markers, prelude, prelude_line))
        i = j + 1
    return out


def translate(path, without, shown):
    bs = blocks(path)
    includes = []
    body = []
    programs = []
    compiled = 0
    for b in bs:
        where = f"{shown}:{b.line - 1}"
        needs = b.markers.get("needs", "")
        if needs and any(t.strip() in without for t in needs.split(",")):
            body.append(f"// {where}: left out (needs {needs})")
            continue
        frag = b.markers.get("fragment")
        has_main = any(MAIN.match(l) for l in b.code)
        if frag is None and not has_main:
            sys.exit(f"{where}: a ```cpp block with no main() and no <!-- fragment --> marker "
                     "(every C++ block in the docs is compiled: mark it, or make it a program)")
        if frag is not None and has_main:
            sys.exit(f"{where}: a fragment with a main(): drop the marker")
        ns = f"block_{b.line - 1}"
        compiled += 1
        code = []
        for n, l in enumerate(b.code):
            if re.match(r"^\s*#\s*include\b", l):
                if l.strip() not in includes:
                    includes.append(l.strip())
                code.append("")
            else:
                code.append(MAIN.sub(r"\1int doc_main()", l))
        body.append(f"namespace {ns} {{")
        if frag is not None:
            body.append("namespace io = taskport::io;")
            body.append("using namespace std::chrono_literals;")
        if b.prelude:
            body.append(f'#line {b.prelude_line} "{shown}"')
            body.extend(b.prelude)
        if frag is not None and frag.startswith("body"):
            params = "taskport::runtime& rt"
            m = re.match(r"body\s*\((.*)\)\s*$", frag)
            if m:
                params = m.group(1)
            body.append(f"[[maybe_unused]] taskport::task<void> fragment({params}) {{")
            body.append(f'#line {b.line} "{shown}"')
            body.extend(code)
            body.append("co_return;")
            body.append("}")
        else:
            body.append(f'#line {b.line} "{shown}"')
            body.extend(code)
        body.append(f"}}  // namespace {ns}")
        if has_main and "no-run" not in b.markers:
            programs.append((where, ns))
    out = ["// Generated by docs/doc_blocks.py from " + shown + ": do not edit.",
           "// NOLINTBEGIN"]
    for h in FRAGMENT_HEADERS:
        out.append(f"#include <{h}>")
    out.extend(includes)
    out.append("#include <cstdio>")
    out.append("#include <exception>")
    out.extend(body)
    out.append("int main() {")
    out.append("    int failed = 0;")
    for where, ns in programs:
        out.append("    try {")
        out.append(f'        std::fprintf(stderr, "{where}: running\\n");')
        out.append(f"        int rc = {ns}::doc_main();")
        out.append(f'        if (rc != 0) {{ std::fprintf(stderr, "{where}: main returned %d\\n", rc); ++failed; }}')
        out.append(f'        else std::fprintf(stderr, "{where}: ok\\n");')
        out.append("    } catch (const std::exception& e) {")
        out.append(f'        std::fprintf(stderr, "{where}: threw: %s\\n", e.what());')
        out.append("        ++failed;")
        out.append("    }")
    out.append(f'    std::fprintf(stderr, "{shown}: {len(programs)} program(s) run, '
               f'{compiled} C++ block(s) compiled, {len(bs) - compiled} left out, %d failed\\n", failed);')
    out.append("    return failed == 0 ? 0 : 1;")
    out.append("}")
    out.append("// NOLINTEND")
    return "\n".join(out) + "\n"


def main():
    args = sys.argv[1:]
    without = set()
    if len(args) >= 2 and args[0] == "--without":
        without = {t for t in args[1].split(",") if t}
        args = args[2:]
    if len(args) != 2:
        sys.exit(__doc__)
    src, dst = args
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shown = os.path.relpath(os.path.abspath(src), root)
    text = translate(src, without, shown)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
