//! wasm/src/policy.d.ts: the npm package's TypeScript declarations of the HardeningPolicy spec,
//! which `wasm/src/lib.rs` includes, must equal what `kube_harden::typescript` generates from
//! the policy schema (so from the rules' settings). `UPDATE_GOLDEN=1 cargo test --test typescript`
//! rewrites the file; review the diff.

use std::fs;
use std::path::Path;

#[test]
fn policy_declarations_match_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("wasm/src/policy.d.ts");
    let generated = kube_harden::typescript::policy_spec_declarations();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&path, &generated).expect("rewrite wasm/src/policy.d.ts");
    }
    let text = fs::read_to_string(&path).expect("wasm/src/policy.d.ts");
    if text != generated {
        let diff = similar::TextDiff::from_lines(&text, &generated)
            .unified_diff()
            .header("wasm/src/policy.d.ts", "generated")
            .to_string();
        panic!(
            "wasm/src/policy.d.ts drifted from the code: run `UPDATE_GOLDEN=1 cargo test --test typescript` and review the diff\n{diff}"
        );
    }
}
