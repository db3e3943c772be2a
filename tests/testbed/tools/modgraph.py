#!/usr/bin/env python3
"""The testbed's module graph: which file imports which, and its strongly
connected components (import cycles). Issue #12 asked for the cycles between the
job folders to be gone; `--folders` checks that no two folders import each other.

Reads every `crate::…`/`super::…` path (in `use` lines and inline, `{…}` groups
expanded, inline `mod tests {}` scopes and `#[path]` test files resolved) and
maps it to the file defining the module. Parent-to-child edges (`pub mod`,
re-exports in mod.rs) are not imports and are not counted.
Usage: python3 tools/modgraph.py src [--edges] [--folders]"""
import os, re, sys
from collections import defaultdict

src = sys.argv[1].rstrip('/')
files = {}  # module path tuple -> relative file name
for root, _, names in os.walk(src):
    for n in names:
        if not n.endswith('.rs'):
            continue
        rel = os.path.relpath(os.path.join(root, n), src)
        parts = rel[:-3].split(os.sep)
        if parts[-1] in ('lib', 'main'):
            if parts == ['main']:
                mp = ('<bin>',)
            else:
                mp = ()
        elif parts[-1] == 'mod':
            mp = tuple(parts[:-1])
        else:
            mp = tuple(parts)
        files[mp] = rel

# #[path = "x.rs"] mod name;  -> x.rs is parent::name
texts = {}
for mp, rel in list(files.items()):
    t = open(os.path.join(src, rel)).read()
    texts[rel] = t
    for m in re.finditer(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;', t):
        target = os.path.normpath(os.path.join(os.path.dirname(rel), m.group(1)))
        for k, v in list(files.items()):
            if v == target:
                del files[k]
        files[mp + (m.group(2),)] = target
rel2mp = {v: k for k, v in files.items()}

def strip_comments(t):
    t = re.sub(r'/\*.*?\*/', '', t, flags=re.S)
    t = re.sub(r'"(?:\\.|[^"\\])*"', '""', t)
    return re.sub(r'//[^\n]*', '', t)

def owner(path):
    p = tuple(path)
    while p not in files and p:
        p = p[:-1]
    return files.get(p)

edges = defaultdict(set)
for rel, raw in texts.items():
    if rel not in rel2mp:
        continue
    base = rel2mp[rel]
    t = strip_comments(raw)
    # inline `mod x {` blocks: track their extents so super:: resolves from inside them
    spans = []
    for m in re.finditer(r'\bmod\s+(\w+)\s*\{', t):
        depth, i = 0, m.end() - 1
        while i < len(t):
            if t[i] == '{': depth += 1
            elif t[i] == '}':
                depth -= 1
                if depth == 0: break
            i += 1
        spans.append((m.start(), i, m.group(1)))
    def scope(pos):
        s = list(base)
        for a, b, name in sorted(spans):
            if a <= pos <= b:
                s.append(name)
        return s
    def resolve(pos, segs):
        cur = scope(pos)
        if segs[0] == 'crate':
            cur = []; segs = segs[1:]
        elif segs[0] == 'self':
            segs = segs[1:]
        while segs and segs[0] == 'super':
            cur = cur[:-1]; segs = segs[1:]
        return cur + segs
    targets = []
    for m in re.finditer(r'\b((?:crate|super|self)(?:::(?:\w+))*)::\{', t):
        i, depth = m.end(), 1
        j = i
        while depth:
            if t[j] == '{': depth += 1
            elif t[j] == '}': depth -= 1
            j += 1
        inner = t[i:j - 1]
        # top-level items
        d, cur, items = 0, '', []
        for ch in inner:
            if ch in '{': d += 1
            if ch in '}': d -= 1
            if ch == ',' and d == 0:
                items.append(cur); cur = ''
            else:
                cur += ch
        items.append(cur)
        for it in items:
            it = it.strip()
            if not it: continue
            first = re.match(r'(\w+)', it)
            if not first: continue
            w = first.group(1)
            segs = m.group(1).split('::') + ([] if w == 'self' else [w])
            targets.append(resolve(m.start(), segs))
    for m in re.finditer(r'\b((?:crate|super)(?:::\w+)+)', t):
        segs = [s for s in m.group(1).split('::')]
        targets.append(resolve(m.start(), segs))
    for tgt in targets:
        o = owner(tgt)
        if o and o != rel:
            edges[rel].add(o)

nodes = sorted(set(files.values()))
# Tarjan
index, low, onstack, stack, sccs, counter = {}, {}, set(), [], [], [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); onstack.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in onstack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); onstack.discard(w); comp.append(w)
            if w == v: break
        sccs.append(sorted(comp))
for v in nodes:
    if v not in index:
        strong(v)
big = sorted([c for c in sccs if len(c) > 1], key=len, reverse=True)
print(f"files: {len(nodes)}  edges: {sum(len(e) for e in edges.values())}")
print(f"largest SCC: {len(big[0]) if big else 1} files; cyclic SCCs: {[len(c) for c in big]}")
for c in big:
    print(f"  SCC ({len(c)}): {' '.join(c)}")
if '--edges' in sys.argv:
    for v in nodes:
        print(v, '->', ' '.join(sorted(edges[v])))
if '--folders' in sys.argv:
    # graph of job folders: cql/exec, mongo/repl, ... (the file's directory)
    fe = defaultdict(set)
    for v in nodes:
        for w in edges[v]:
            a, b = os.path.dirname(v), os.path.dirname(w)
            if a != b: fe[a].add(b)
    def reach(a, b, seen):
        if a == b: return True
        for n in fe[a]:
            if n not in seen:
                seen.add(n)
                if reach(n, b, seen): return True
        return False
    cyc = []
    print("folder edges:")
    for a in sorted(fe):
        print(f"  {a or '.'} -> {', '.join(sorted(x or '.' for x in fe[a]))}")
    for a in sorted(fe):
        for b in sorted(fe[a]):
            if reach(b, a, {b}): cyc.append((a, b))
    print(f"folder-level edges inside a cycle: {cyc if cyc else 'none'}")
