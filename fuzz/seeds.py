#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into OUT/<target>/ (fuzz/README.md).

Seeds: the golden cases' inputs (testdata/*/*/input.yaml) and the documents of the real-world
corpus (tests/corpus/*.yaml) that hold a pod, each at most MAX bytes. `stream` gets them as
they are; `list` and `resource_list` get them as the items of a sequence (the targets add the
`kind: List` / `kind: ResourceList` header and indent the bytes under `items:`).
"""

import glob
import hashlib
import os
import re
import sys

MAX = 4096
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POD_KEYS = re.compile(r"^\s*(containers|jobTemplate|template):", re.M)


def documents(text):
    """The documents of a stream, split at `---` lines."""
    docs, cur = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("---") and line[3:].strip() == "" and cur:
            docs.append("".join(cur))
            cur = []
        if not line.startswith("---"):
            cur.append(line)
    if cur:
        docs.append("".join(cur))
    return [d for d in docs if d.strip() and not all(
        l.strip() == "" or l.lstrip().startswith("#") for l in d.splitlines())]


def as_items(docs):
    """Documents as a YAML block sequence at column 0."""
    out = []
    for d in docs:
        lines = [l for l in d.splitlines(keepends=True)
                 if l.strip() and not l.startswith("#") and not l.startswith("%")]
        if not lines:
            continue
        out.append("- " + lines[0])
        out.extend("  " + l for l in lines[1:])
    return "".join(out)


def write(out, target, text):
    if not text or len(text.encode()) > MAX:
        return
    data = text.encode()
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def main():
    out = sys.argv[1]
    streams = []
    for path in sorted(glob.glob(os.path.join(ROOT, "testdata/*/*/input.yaml"))):
        with open(path, encoding="utf-8") as f:
            streams.append(f.read())
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/corpus/*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for d in documents(f.read()):
                if POD_KEYS.search(d):
                    streams.append(d)
    for s in streams:
        write(out, "stream", s)
        if re.search(r"^kind: (ResourceList|List)\b", s, re.M):
            continue
        items = as_items(documents(s))
        write(out, "list", items)
        write(out, "resource_list", items)
    for target in ("stream", "list", "resource_list"):
        n = len(os.listdir(os.path.join(out, target)))
        print(f"{target}: {n} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
