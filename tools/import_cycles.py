#!/usr/bin/env python3
"""Lists import cycles between the crate's modules (one module per file under src/).

A module depends on another when its code names a path into it: `crate::a::b`, `super::x`,
`self::child`, or `child::` for one of its own child modules. Each path is charged to the
longest prefix that is a file module. A module's `#[cfg(test)] mod tests { ... }` tail and
its `mod` declarations are not dependencies. Exit 0 with "no import cycles", or exit 1 listing
each cycle (a strongly connected group of modules) with one reference per edge, file:line.

    python3 tools/import_cycles.py [SRC_DIR]    (default: src)

.ci/run runs it after clippy; a cycle fails the run. Fixes that keep it clean: a parent
mod.rs that only declares its children and re-exports them (the items it defined moved into
a named child), children importing from the defining sibling (`super::table::Config`, not
`super::Config`), shared types in a leaf module, and a lower layer made generic over what
an upper one gives it (shard::mesh::Forward) instead of naming it.
"""

import re
import sys
from pathlib import Path

PATH_RE = re.compile(r"\b(crate|super|self|[a-z_][a-z0-9_]*)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP_RE = re.compile(r"\b(crate|super|self)::\{([^;]*?)\}", re.S)


def modules(src):
    """Maps module path (tuple) -> file for every .rs file under src."""
    mods = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts in (["lib"], ["main"]):
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        if parts == [] and f.name == "main.rs":
            continue  # the binary is its own crate root; it uses the lib as `tessera::`
        mods[tuple(parts)] = f
    return mods


def strip_tests(text):
    """Drops the `#[cfg(test)]` module at the end of a file and comments."""
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    if m:
        text = text[: m.start()]
    text = re.sub(r"//[^\n]*", lambda c: " " * len(c.group(0)), text)
    return text


def resolve(mods, here, head, rest):
    """The file module a path `head::rest` from module `here` lands in, or None."""
    segs = [s for s in rest.split("::") if s]
    if head == "crate":
        base = []
    elif head == "super":
        base = list(here[:-1])
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
    elif head == "self":
        base = list(here)
    elif here + (head,) in mods:
        base = list(here) + [head]
    else:
        return None
    full = base + segs
    for n in range(len(full), -1, -1):
        if tuple(full[:n]) in mods:
            return tuple(full[:n])
    return None


def main():
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    mods = modules(src)
    edges = {}  # (a, b) -> "file:line"
    for here, f in mods.items():
        text = strip_tests(f.read_text())
        refs = []
        for m in PATH_RE.finditer(text):
            refs.append((m.start(), m.group(1), m.group(2)))
        for m in GROUP_RE.finditer(text):  # use crate::{a::X, b}
            for item in re.split(r"[,\s]+", m.group(2)):
                name = item.split("::")[0].strip("{} ")
                if re.fullmatch(r"[a-z_][a-z0-9_]*", name or ""):
                    refs.append((m.start(), m.group(1), "::" + name))
        for pos, head, rest in refs:
            to = resolve(mods, here, head, rest)
            if to is None or to == here:
                continue
            line = text.count("\n", 0, pos) + 1
            edges.setdefault((here, to), f"{f}:{line}")

    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(mods):
        if v not in index:
            visit(v)

    def name(m):
        return "::".join(("crate",) + m)

    if not sccs:
        print(f"no import cycles ({len(mods)} modules, {len(edges)} dependencies)")
        return 0
    for comp in sccs:
        members = set(comp)
        print("cycle: " + " , ".join(sorted(name(m) for m in comp)))
        for (a, b), where in sorted(edges.items()):
            if a in members and b in members:
                print(f"  {name(a)} -> {name(b)}  ({where})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
