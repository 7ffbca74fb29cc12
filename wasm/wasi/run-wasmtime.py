#!/usr/bin/env python3
"""Runs a WASI (wasm32-wasip1) command module under wasmtime, like `wasmtime run --dir .`.

Usage: run-wasmtime.py MODULE.wasm [ARGS...]

Uses the `wasmtime` Python package (the wasmtime runtime as a library; `pip install wasmtime`),
so no wasmtime CLI is needed. stdin, stdout, stderr and the environment are the process's own; the
current directory is the module's `.` (FILE arguments are relative to it); the exit status is the
module's. Compiled code is cached by wasmtime (its default cache directory), so only the first run
of a new module pays for compilation.
"""

import os
import sys

import wasmtime


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: run-wasmtime.py MODULE.wasm [ARGS...]", file=sys.stderr)
        return 2
    module_path = sys.argv[1]
    config = wasmtime.Config()
    try:
        config.cache = True
    except Exception:  # no cache directory available: compile every time
        pass
    engine = wasmtime.Engine(config)
    module = wasmtime.Module.from_file(engine, module_path)
    wasi = wasmtime.WasiConfig()
    # argv[0] is the command's name, as a native build sees it.
    wasi.argv = ["kube-harden"] + sys.argv[2:]
    wasi.inherit_env()
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    wasi.preopen_dir(os.getcwd(), ".")
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, module)
    start = instance.exports(store)["_start"]
    try:
        start(store)
    except wasmtime.ExitTrap as exit_trap:
        return exit_trap.code
    except wasmtime.Trap as trap:
        # A Rust panic aborts with `unreachable`; the panic message is already on stderr.
        print(f"kube-harden (wasm): trap: {trap}", file=sys.stderr)
        return 134
    return 0


if __name__ == "__main__":
    sys.exit(main())
