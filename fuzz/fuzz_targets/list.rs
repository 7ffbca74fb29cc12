#![no_main]
//! `cargo fuzz run list`: see fuzz/README.md for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kube_harden_fuzz::check(kube_harden_fuzz::Form::List, data);
});
