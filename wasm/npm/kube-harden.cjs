#!/usr/bin/env node
// The kube-harden command line, as the npm package's `kube-harden` bin: the CLI compiled to WASI
// (bin/kube-harden-wasi.wasm, the same version as the library) run by node's WASI. Same flags,
// stdin/stdout and exit status as the native binary; only the current directory is visible.
"use strict";
const { spawnSync } = require("node:child_process");
const path = require("node:path");

const result = spawnSync(
  process.execPath,
  [
    "--no-warnings",
    // node 20's GC can crash while a large wasm memory grows (see run-node.mjs).
    "--single-threaded-gc",
    "--no-incremental-marking",
    path.join(__dirname, "run-node.mjs"),
    path.join(__dirname, "kube-harden-wasi.wasm"),
    ...process.argv.slice(2),
  ],
  { stdio: "inherit" },
);
if (result.error) {
  console.error(`kube-harden: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
