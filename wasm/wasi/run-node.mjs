// Runs a WASI (wasm32-wasip1) command module under node's `node:wasi`, like `wasmtime run --dir .`.
//
// Usage: node --no-warnings --single-threaded-gc run-node.mjs MODULE.wasm [ARGS...]
//
// stdin, stdout, stderr and the environment are the process's own; the current directory is the
// module's `.` (FILE arguments are relative to it); the exit status is the module's.
// `--single-threaded-gc`: node 20's concurrent GC can crash while a large wasm memory grows (seen
// with ~30 MB inputs); `--no-warnings` keeps node's "WASI is experimental" notice off stderr.
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
