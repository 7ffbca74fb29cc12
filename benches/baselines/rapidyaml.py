"""Baseline of benches/speed.rs: rapidyaml (C++, PyPI `rapidyaml`) parses the whole stream from
stdin into its tree and emits it again, single-threaded. Prints the seconds of parse + emit alone
(reading stdin and starting Python are not counted, which favours the baseline) on stdout."""
import sys
import time

import ryml

data = sys.stdin.buffer.read()
start = time.perf_counter()
tree = ryml.parse_in_arena(data)
out = ryml.emit_yaml(tree)
seconds = time.perf_counter() - start
assert len(out) > len(data) // 2, "rapidyaml emitted too little"
print(f"{seconds:.6f}")
