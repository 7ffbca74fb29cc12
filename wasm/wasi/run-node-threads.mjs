// Runs a WASI command module built for `wasm32-wasip1-threads` under node's `node:wasi`, with
// the `wasi` `thread-spawn` import (the wasi-threads proposal) implemented by node:worker_threads.
//
// Usage: node --no-warnings --single-threaded-gc --no-incremental-marking run-node-threads.mjs MODULE.wasm [ARGS...]
//
// The same contract as run-node.mjs: stdin, stdout, stderr and the environment are the process's
// own; the current directory is the module's `.`; the exit status is the module's. In addition
// KUBE_HARDEN_THREADS is set to node's `os.availableParallelism()` unless it is set already (the
// module cannot count cores itself).
//
// How: the module imports its memory (shared, limits read from the module's import section). The
// main thread instantiates the module with it and runs `_start`. Each `thread-spawn(arg)` hands
// (tid, arg) to a worker that instantiates the same compiled Module on the same memory and calls
// `wasi_thread_start(tid, arg)`. A worker is started at the first spawn that finds none parked
// (node boots it on its own thread while the spawning thread stays inside wasm) and is parked when
// its thread ends, for the next spawn: a run pays for as many workers as threads ran at once, and
// one that never spawns (under 64 documents) for none. Workers may spawn too (a pool each).
// A worker has its own `node:wasi` instance with the same args, env, stdio and preopened `.`, so
// stdout/stderr writes, clocks and random numbers work there; a file the main thread opened is not
// open in a worker (kube-harden's threads only compute). When `_start` returns, the process exits
// with its status (parked workers end with it). A trap in a worker prints the error and ends the
// process with status 1, as an uncaught trap on the main thread does; `proc_exit` on a worker ends
// the process with its status.
import { writeSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { WASI } from "node:wasi";
import { Worker, isMainThread, workerData } from "node:worker_threads";

// Per worker, Int32 slots in a SharedArrayBuffer: state (IDLE or GO), tid, arg.
const IDLE = 0;
const GO = 1;
const SLOTS = 3;
// wasi-threads thread ids are positive and below 2^29.
const MAX_TID = 0x1fffffff;
const EAGAIN = 6;

function wasiFor(args, env, returnOnExit) {
  return new WASI({
    version: "preview1",
    // argv[0] is the command's name, as a native build sees it.
    args: ["kube-harden", ...args],
    env,
    preopens: { ".": process.cwd() },
    returnOnExit,
  });
}

/// The imported memory's limits (initial, maximum pages, shared) from the import section.
function importedMemory(bytes) {
  let at = 8;
  const u8 = () => bytes[at++];
  const leb = () => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = u8();
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80) return result;
    }
  };
  const name = () => {
    const n = leb();
    const s = Buffer.from(bytes.subarray(at, at + n)).toString("utf8");
    at += n;
    return s;
  };
  while (at < bytes.length) {
    const id = u8();
    const size = leb();
    const end = at + size;
    if (id === 2) {
      for (let count = leb(); count > 0; count--) {
        const module = name();
        const field = name();
        const kind = u8();
        if (kind === 0) leb(); // function: type index
        else if (kind === 1) { u8(); const f = u8(); leb(); if (f & 1) leb(); } // table
        else if (kind === 3) { u8(); u8(); } // global
        else if (kind === 2) {
          const flags = u8();
          const initial = leb();
          const maximum = flags & 1 ? leb() : undefined;
          return { module, field, initial, maximum, shared: (flags & 2) !== 0 };
        } else throw new Error(`unknown import kind ${kind}`);
      }
      break;
    }
    at = end;
  }
  throw new Error("the module imports no memory: not a wasm32-wasip1-threads build");
}

/// The `thread-spawn` import of one thread (main or worker): hands (tid, arg) to a parked worker
/// of this thread's pool, or to a new one. `shared` is what every worker gets: the compiled
/// module, the memory and its import's name, args, env, and the thread id counter.
function spawner(shared) {
  const pool = [];
  const startWorker = () => {
    const control = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { ...shared, control },
      env: shared.env,
      // Not piped into this thread's process.stdout/stderr (the default): opening those makes
      // fds 1 and 2 non-blocking for the whole process, and the module's writes to a pipe then
      // fail with EAGAIN. The module writes to the fds itself; a worker's own messages go to
      // fd 2 with writeSync.
      stdout: true,
      stderr: true,
    });
    worker.unref();
    const entry = { control, worker };
    pool.push(entry);
    return entry;
  };
  return (arg) => {
    const tid = Atomics.add(shared.tids, 0, 1);
    if (tid > MAX_TID) return -EAGAIN;
    const entry = pool.find((e) => Atomics.load(e.control, 0) === IDLE) ?? startWorker();
    const { control } = entry;
    control[1] = tid;
    control[2] = arg;
    Atomics.store(control, 0, GO);
    Atomics.notify(control, 0);
    return tid;
  };
}

if (isMainThread) {
  const [modulePath, ...args] = process.argv.slice(2);
  if (!modulePath) {
    writeSync(2, "usage: node run-node-threads.mjs MODULE.wasm [ARGS...]\n");
    process.exit(2);
  }
  const env = { ...process.env };
  if (!env.KUBE_HARDEN_THREADS) env.KUBE_HARDEN_THREADS = String(Math.max(1, availableParallelism()));
  const bytes = new Uint8Array(await readFile(modulePath));
  const limits = importedMemory(bytes);
  const memory = new WebAssembly.Memory({
    initial: limits.initial,
    maximum: limits.maximum,
    shared: limits.shared,
  });
  const module = await WebAssembly.compile(bytes);
  const tids = new Int32Array(new SharedArrayBuffer(4));
  tids[0] = 1;
  const shared = { module, memory, limits, args, env, tids };

  const wasi = wasiFor(args, env, true);
  const imports = {
    ...wasi.getImportObject(),
    [limits.module]: { [limits.field]: memory },
    wasi: { "thread-spawn": spawner(shared) },
  };
  const instance = await WebAssembly.instantiate(module, imports);
  // `_start` returned (or called proc_exit): the module's status, whatever the parked workers do.
  process.exit(wasi.start(instance));
} else {
  const { control, ...shared } = workerData;
  const { module, memory, limits, args, env } = shared;
  // Without returnOnExit, `proc_exit` on a worker ends the process with the module's status, as
  // wasi-threads says (every thread ends); the same call ends it after a trap here, since the
  // main thread may be blocked in wasm waiting for this one and cannot take a message.
  const wasi = wasiFor(args, env, false);
  const fail = (what, err) => {
    writeSync(2, `kube-harden: wasm thread ${what}: ${err && err.stack ? err.stack : err}\n`);
    wasi.wasiImport.proc_exit(1);
  };
  let start;
  try {
    const imports = {
      ...wasi.getImportObject(),
      [limits.module]: { [limits.field]: memory },
      wasi: { "thread-spawn": spawner(shared) },
    };
    const instance = new WebAssembly.Instance(module, imports);
    // node:wasi takes the module's memory in `initialize`/`start`; `start` would run `_start`
    // and `initialize` refuses a module exporting `_start`: give it an object with the memory.
    wasi.initialize({ exports: { memory } });
    start = instance.exports.wasi_thread_start;
  } catch (err) {
    fail("setup", err);
  }
  for (;;) {
    // Parked (state IDLE) until a spawn sets GO.
    Atomics.wait(control, 0, IDLE);
    const tid = control[1];
    try {
      start(tid, control[2]);
    } catch (err) {
      fail(tid, err);
    }
    Atomics.store(control, 0, IDLE);
  }
}
