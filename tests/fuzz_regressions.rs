//! The reproducers the fuzz targets found (fuzz/regressions/, fuzz/README.md), as plain tests:
//! each input is refused outright or hardened idempotently (the second run's output, results
//! included, is the first's byte for byte). scripts/fuzz.sh also replays them through every
//! target with all of the targets' checks. fuzz/regressions/open/ holds the ones not fixed yet.

use kube_harden::{process, Options};

#[test]
fn fuzz_reproducers_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no reproducers in {}", dir.display());
    for file in files {
        let input = std::fs::read_to_string(&file).unwrap();
        let mut options = Options {
            threads: 1,
            ..Options::default()
        };
        options.overrides.disable.push("pin-image-digests".into());
        let Ok(first) = process(&input, &options) else {
            continue;
        };
        let text = first.text();
        let second = process(&text, &options)
            .unwrap_or_else(|e| panic!("{}: the output does not read back: {e}", file.display()))
            .text();
        assert_eq!(second, text, "{}: not idempotent", file.display());
        // A ResourceList: its items one by one give what the list read as one tree gives.
        if first.form == kube_harden::InputForm::ResourceList {
            kube_harden::engine::set_resource_list_fast_path(false);
            let tree = process(&input, &options);
            kube_harden::engine::set_resource_list_fast_path(true);
            let tree = tree.unwrap();
            assert_eq!(tree.text(), text, "{}: item path differs", file.display());
            assert_eq!(
                format!("{:?}", tree.results),
                format!("{:?}", first.results),
                "{}: item path gives other results",
                file.display()
            );
        }
    }
}
