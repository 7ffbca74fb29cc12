//! Test files whose tests need an external client (Helm, kpt, kubectl, a registry, the musl
//! target, the Go oracle) run their tests as libtest-mimic trials (`harness = false`), so that a
//! missing client shows in `cargo test`'s output as
//!
//! ```text
//! test helm3_show_only_still_finds_the_template ... ignored (Helm 3 … is not installed; …)
//! ```
//!
//! and is counted as ignored, never as passed. Under the file's strict switch (CI sets
//! `KUBE_HARDEN_E2E_REQUIRED=1`, `KUBE_HARDEN_REQUIRE_REGISTRY=1`) a missing client fails the test.
//! `cargo test --test e2e_helm -- show_only` selects tests as usual; a test body panics to fail.
#![allow(dead_code)]

use libtest_mimic::{Arguments, Completion, Trial};

/// What some tests of a file need.
#[derive(Clone, Copy)]
pub struct Needs {
    /// `Err(why it is unavailable, and how to install it)` when the client is missing.
    pub probe: fn() -> Result<(), String>,
    /// The environment variable that makes a missing client a failure.
    pub strict_switch: &'static str,
    /// Whether that switch is set.
    pub strict: fn() -> bool,
}

impl Needs {
    /// A need that `KUBE_HARDEN_E2E_REQUIRED` (set, not empty, not `0`) makes strict.
    pub const fn e2e(probe: fn() -> Result<(), String>) -> Self {
        Needs {
            probe,
            strict_switch: "KUBE_HARDEN_E2E_REQUIRED",
            strict: e2e_required,
        }
    }
}

/// True when the e2e clients must be present (CI after `scripts/setup-e2e.sh`).
pub fn e2e_required() -> bool {
    std::env::var_os("KUBE_HARDEN_E2E_REQUIRED").is_some_and(|v| v != "0" && !v.is_empty())
}

/// A test that needs nothing outside the repository.
pub fn test(name: &str, body: fn()) -> Trial {
    Trial::test(name, move || {
        body();
        Ok(())
    })
}

/// A test that runs when `needs` finds its client; otherwise it is ignored with the reason, or
/// fails under the strict switch.
pub fn needs(name: &str, needs: Needs, body: fn()) -> Trial {
    Trial::ignorable_test(name, move || match (needs.probe)() {
        Ok(()) => {
            body();
            Ok(Completion::Completed)
        }
        Err(reason) if (needs.strict)() => Err(format!(
            "{reason} ({} is set, so a missing client is a failure)",
            needs.strict_switch
        )
        .into()),
        Err(reason) => Ok(Completion::ignored_with(reason)),
    })
}

/// Runs the trials with the command line's filters and flags, and exits with the result.
pub fn main(trials: Vec<Trial>) -> ! {
    libtest_mimic::run(&Arguments::from_args(), trials).exit()
}
