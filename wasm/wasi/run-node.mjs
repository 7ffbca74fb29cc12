// Runs a WASI (wasm32-wasip1) command module under node's `node:wasi`, like `wasmtime run --dir .`.
//
// Usage: node --no-warnings --single-threaded-gc --no-incremental-marking run-node.mjs MODULE.wasm [ARGS...]
//
// stdin, stdout, stderr and the environment are the process's own; the current directory is the
// module's `.` (FILE arguments are relative to it); the exit status is the module's.
// `--single-threaded-gc --no-incremental-marking`: node 20's V8 (11.3) crashes in its mark-compact
// GC (`Fatal error ... unreachable code` in ProcessEphemerons, or a corrupted heap) while a big
// wasm memory grows: every time above ~8 MB of stdin without these flags, never with them (tested
// up to 26 MB). `--no-warnings` keeps node's "WASI is experimental" notice off stderr.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";

const [modulePath, ...args] = process.argv.slice(2);
if (!modulePath) {
  process.stderr.write("usage: node run-node.mjs MODULE.wasm [ARGS...]\n");
  process.exit(2);
}
const wasi = new WASI({
  version: "preview1",
  // argv[0] is the command's name, as a native build sees it.
  args: ["kube-harden", ...args],
  env: process.env,
  preopens: { ".": process.cwd() },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(modulePath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
