//! The part of Go's `GOOS=js GOARCH=wasm` host interface (the `wasm_exec.js` glue that kpt's
//! nodejs runtime embeds) this module needs to register `processResourceList` the way a Go KRM
//! function does.
//!
//! The contract (read from kpt's glue and Go's `wasm_exec.js`): every import lives in module `go`
//! and takes one `i32`, the address of an argument block; arguments and results are 8-byte slots
//! at `sp + 8`, `sp + 16`, …; a JS value is a NaN-boxed id into the glue's value table; strings and
//! slices are (pointer, length[, capacity]) as i64. The glue keeps a `DataView` over the memory and
//! must be told (`runtime.resetMemoryDataView`) whenever the memory has grown. Exports: memory as
//! `mem` (see build.rs), `run(argc, argv)`, `resume()` and `getsp()`.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The argument block shared with the host.
#[repr(C, align(8))]
struct ArgBlock(UnsafeCell<[u8; 96]>);
// The module is single-threaded; the block is only touched between calls into the host.
unsafe impl Sync for ArgBlock {}
static ARGS: ArgBlock = ArgBlock(UnsafeCell::new([0; 96]));

#[link(wasm_import_module = "go")]
extern "C" {
    #[link_name = "syscall/js.valueGet"]
    fn js_value_get(sp: u32);
    #[link_name = "syscall/js.valueSet"]
    fn js_value_set(sp: u32);
    #[link_name = "syscall/js.valueIndex"]
    fn js_value_index(sp: u32);
    #[link_name = "syscall/js.valueCall"]
    fn js_value_call(sp: u32);
    #[link_name = "syscall/js.stringVal"]
    fn js_string_val(sp: u32);
    #[link_name = "syscall/js.valuePrepareString"]
    fn js_value_prepare_string(sp: u32);
    #[link_name = "syscall/js.valueLoadString"]
    fn js_value_load_string(sp: u32);
    #[link_name = "runtime.resetMemoryDataView"]
    fn runtime_reset_memory_data_view(sp: u32);
}

/// A JS value as the glue encodes it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct JsValue(u64);

const NAN_HEAD: u64 = 0x7FF8_0000_0000_0000;
const TYPE_OBJECT: u64 = 1 << 32;
/// `undefined` is encoded as the number 0.0.
const UNDEFINED: JsValue = JsValue(0);
const NULL: JsValue = JsValue(NAN_HEAD | 2);
/// The glue's predefined ids: 5 is `globalThis`, 6 the `Go` instance itself.
const GLOBAL: JsValue = JsValue(NAN_HEAD | TYPE_OBJECT | 5);
const GO: JsValue = JsValue(NAN_HEAD | TYPE_OBJECT | 6);

/// Ids of the two functions registered with `_makeFuncWrapper`.
const PROCESS: f64 = 1.0;
const ERRORS: f64 = 2.0;

fn number(n: f64) -> JsValue {
    JsValue(n.to_bits())
}

/// Memory size (in pages) the glue's `DataView` was last told about.
static KNOWN_PAGES: AtomicUsize = AtomicUsize::new(0);

/// The argument block's address, after making sure the host sees the current memory.
fn sp() -> u32 {
    let pages = core::arch::wasm32::memory_size(0);
    if KNOWN_PAGES.swap(pages, Ordering::Relaxed) != pages {
        // Otherwise the host's DataView is detached after `memory.grow`.
        unsafe { runtime_reset_memory_data_view(ARGS.0.get() as u32) };
    }
    ARGS.0.get() as u32
}

fn slots() -> &'static mut [u8; 96] {
    unsafe { &mut *ARGS.0.get() }
}

fn put(offset: usize, v: u64) {
    slots()[offset..offset + 8].copy_from_slice(&v.to_le_bytes());
}

fn get(offset: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&slots()[offset..offset + 8]);
    u64::from_le_bytes(b)
}

fn put_str(offset: usize, s: &[u8]) {
    put(offset, s.as_ptr() as u64);
    put(offset + 8, s.len() as u64);
}

fn value_get(v: JsValue, property: &str) -> JsValue {
    put(8, v.0);
    put_str(16, property.as_bytes());
    unsafe { js_value_get(sp()) };
    JsValue(get(32))
}

fn value_set(v: JsValue, property: &str, x: JsValue) {
    put(8, v.0);
    put_str(16, property.as_bytes());
    put(32, x.0);
    unsafe { js_value_set(sp()) };
}

fn value_index(v: JsValue, i: u64) -> JsValue {
    put(8, v.0);
    put(16, i);
    unsafe { js_value_index(sp()) };
    JsValue(get(24))
}

/// `v[method](...args)`; the result is `undefined` if the call threw.
fn value_call(v: JsValue, method: &str, args: &[JsValue]) -> JsValue {
    put(8, v.0);
    put_str(16, method.as_bytes());
    put(32, args.as_ptr() as u64);
    put(40, args.len() as u64);
    put(48, args.len() as u64);
    unsafe { js_value_call(sp()) };
    if slots()[64] == 1 {
        JsValue(get(56))
    } else {
        UNDEFINED
    }
}

fn string_value(s: &str) -> JsValue {
    put_str(8, s.as_bytes());
    unsafe { js_string_val(sp()) };
    JsValue(get(24))
}

/// A JS string's UTF-8 bytes.
fn load_string(v: JsValue) -> Vec<u8> {
    put(8, v.0);
    unsafe { js_value_prepare_string(sp()) };
    let (bytes, len) = (get(16), get(24) as usize);
    let mut out = vec![0u8; len];
    put(8, bytes);
    put(16, out.as_mut_ptr() as u64);
    put(24, len as u64);
    put(32, len as u64);
    unsafe { js_value_load_string(sp()) };
    out
}

/// The last run's error messages, for `processResourceListErrors`.
static LAST_ERRORS: Mutex<String> = Mutex::new(String::new());

/// Called once by the glue: registers the two functions kpt's glue calls.
#[no_mangle]
pub extern "C" fn run(_argc: i32, _argv: i32) {
    for (id, name) in [
        (PROCESS, "processResourceList"),
        (ERRORS, "processResourceListErrors"),
    ] {
        let f = value_call(GO, "_makeFuncWrapper", &[number(id)]);
        value_set(GLOBAL, name, f);
    }
}

/// Called by the glue when JS calls a registered function: the call is in `go._pendingEvent`.
#[no_mangle]
pub extern "C" fn resume() {
    let event = value_get(GO, "_pendingEvent");
    if event == NULL || event == UNDEFINED {
        return;
    }
    value_set(GO, "_pendingEvent", NULL);
    let id = f64::from_bits(value_get(event, "id").0);
    let args = value_get(event, "args");
    let input = String::from_utf8_lossy(&load_string(value_index(args, 0))).into_owned();
    let output = if id == PROCESS {
        let answer = crate::answer(&input);
        if answer.failed {
            fail_process();
        }
        *LAST_ERRORS.lock().unwrap_or_else(|e| e.into_inner()) = answer.errors;
        answer.output
    } else {
        LAST_ERRORS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    };
    value_set(event, "result", string_value(&output));
}

/// Makes node exit 1 after the glue has printed the output, as the native binary does on an
/// error result: kpt then reports the function as failed, shows its results and writes nothing.
/// Hosts without a `process` object (kpt's wasmtime runtime) only get the error results.
fn fail_process() {
    let process = value_get(GLOBAL, "process");
    if process != UNDEFINED && process != NULL {
        value_set(process, "exitCode", number(1.0));
    }
}

/// The argument block's address (the glue re-reads it after calls that may re-enter).
#[no_mangle]
pub extern "C" fn getsp() -> u32 {
    ARGS.0.get() as u32
}
