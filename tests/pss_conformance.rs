//! Pod Security Admission conformance: every fixture of the PSA project's labelled set
//! (`tests/pss-fixtures`, see its README) must get exactly its verdict at its level and version:
//! a `pass` pod meets the level, a `fail` pod does not.

use std::collections::BTreeMap;
use std::path::Path;

use kube_harden::model::path::FieldPath;
use kube_harden::pss::{self, Level, Pod, Version};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pss-fixtures");

#[test]
fn every_fixture_gets_its_verdict() {
    let dir = Path::new(FIXTURES);
    let index = std::fs::read_to_string(dir.join("index.tsv")).expect("index.tsv");
    let mut pods: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    // (level, minor) -> (agreeing, total)
    let mut tally: BTreeMap<(Level, u32), (usize, usize)> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for line in index.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [level, version, verdict, name, pod] = f[..] else {
            panic!("bad index line {line:?}");
        };
        let level: Level = level.parse().unwrap();
        let version: Version = version.parse().unwrap();
        let expect_pass = match verdict {
            "pass" => true,
            "fail" => false,
            other => panic!("bad verdict {other:?}"),
        };
        let object = pods.entry(pod.to_string()).or_insert_with(|| {
            let text = std::fs::read_to_string(dir.join("pods").join(format!("{pod}.yaml")))
                .unwrap_or_else(|e| panic!("{pod}: {e}"));
            kube_harden::yaml::tree::parse_document(&text)
                .unwrap_or_else(|e| panic!("{pod}: {e:?}"))
                .root
                .expect("a pod")
                .to_value()
        });
        let pod_view = Pod::at(
            object,
            &FieldPath::root().key("metadata"),
            &FieldPath::root().key("spec"),
        )
        .expect("a pod spec");
        let passes = pss::meets(&pod_view, level, version);
        let t = tally.entry((level, version.effective_minor())).or_default();
        t.1 += 1;
        if passes == expect_pass {
            t.0 += 1;
        } else {
            let why: Vec<String> = pss::violations(&pod_view, level, version)
                .iter()
                .map(|v| format!("{}: {}", v.control, v.failure.message))
                .collect();
            disagreements.push(format!(
                "{level}/{version}/{verdict}/{name}: evaluated {} {why:?}",
                if passes { "pass" } else { "fail" }
            ));
        }
    }
    // Per-version agreement (cargo test -- --nocapture shows it).
    let mut by_version: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    for ((_, minor), (ok, n)) in &tally {
        let e = by_version.entry(*minor).or_default();
        e.0 += ok;
        e.1 += n;
    }
    for (minor, (ok, n)) in &by_version {
        let b = tally
            .get(&(Level::Baseline, *minor))
            .copied()
            .unwrap_or_default();
        let r = tally
            .get(&(Level::Restricted, *minor))
            .copied()
            .unwrap_or_default();
        println!(
            "v1.{minor:<2}  {ok:>3}/{n:<3} agree ({:.1}%)  baseline {}/{}  restricted {}/{}",
            100.0 * *ok as f64 / *n as f64,
            b.0,
            b.1,
            r.0,
            r.1
        );
    }
    let total: usize = by_version.values().map(|v| v.1).sum();
    let ok: usize = by_version.values().map(|v| v.0).sum();
    println!("total {ok}/{total}");
    assert_eq!(total, 4537, "the pinned fixture set is incomplete");
    assert_eq!(
        by_version.len(),
        (pss::MAX_MINOR + 1) as usize,
        "every version from v1.0 to v1.{} has fixtures",
        pss::MAX_MINOR
    );
    assert!(
        tally.keys().all(|(l, _)| *l != Level::Privileged),
        "no privileged fixtures expected"
    );
    assert!(
        disagreements.is_empty(),
        "{} of {total} fixtures disagree with PSA:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
