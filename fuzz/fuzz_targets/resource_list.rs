#![no_main]
//! `cargo fuzz run resource_list`: see fuzz/README.md for the properties checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kube_harden_fuzz::check(kube_harden_fuzz::Form::ResourceList, data);
});
