#!/usr/bin/env python3
"""Lists import cycles between the crate's modules (one module per file under src/).

A module depends on another when its code names a path into it: `crate::a::b`, `super::x`,
`self::child`, `child::` for one of its own child modules, or `m::` for a module it imported
by name (`use crate::cmd::{self, ..}`); `use` trees are expanded brace by brace. Each path is
charged to the longest prefix that is a file module. A module's `#[cfg(test)] mod tests { ... }` tail and
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
USE_RE = re.compile(r"\buse\s+([^;]*);", re.S)


def expand_use(tree):
    """Expands a use tree (`a::{b::C, d as e, self}`) into (path segments, local name) pairs."""
    tree = re.sub(r"\s+", " ", tree).replace(" ::", "::").replace(":: ", "::")
    out = []

    def walk(prefix, t):
        if "{" in t:
            head, _, body = t.partition("{")
            body = body[: body.rfind("}")]
            head = [x for x in head.strip().split("::") if x]
            depth, item, items = 0, "", []
            for c in body:
                if c == "," and depth == 0:
                    items.append(item)
                    item = ""
                    continue
                depth += (c == "{") - (c == "}")
                item += c
            items.append(item)
            for it in items:
                if it.strip():
                    walk(prefix + head, it.strip())
            return
        t, _, alias = t.strip().partition(" as ")
        segs = [x for x in t.strip().split("::") if x]
        name = alias.strip() or (segs[-1] if segs else "")
        if segs and segs[-1] == "self":
            segs = segs[:-1]
            if not alias.strip():
                name = (prefix + segs)[-1] if (prefix + segs) else ""
        out.append((prefix + segs, name))

    walk([], tree.strip())
    return out

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


def resolve(mods, here, head, rest, aliases):
    """The file module a path `head::rest` from module `here` lands in, or None. `aliases`:
    names this module imported that are modules."""
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
    elif head in aliases:
        base = list(aliases[head])
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
        aliases = {}  # a module imported by name: `use super::order;` then `order::Output`
        for m in USE_RE.finditer(text):
            for segs, name in expand_use(m.group(1)):
                if not segs or segs[0] in ("std", "core", "alloc"):
                    continue
                head, rest = segs[0], "".join("::" + x for x in segs[1:])
                refs.append((m.start(), head, rest))
                to = resolve(mods, here, head, rest, {})
                if to is not None and name and to[-1:] == tuple(segs[-1:]):
                    aliases[name] = to
        # Other paths, with the use declarations (counted above) blanked out.
        rest_text = USE_RE.sub(lambda u: re.sub(r"[^\n]", " ", u.group(0)), text)
        for m in PATH_RE.finditer(rest_text):
            refs.append((m.start(), m.group(1), m.group(2)))
        for pos, head, rest in refs:
            to = resolve(mods, here, head, rest, aliases)
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
