//! function.yaml: the kpt catalog metadata and the KRMFunctionDefinition, whose openAPIV3Schema
//! must equal the schema generated from the code. `UPDATE_GOLDEN=1 cargo test --test function_yaml`
//! rewrites the schema (everything after the `openAPIV3Schema:` line) and nothing else.

use std::fs;
use std::path::Path;

use kube_harden::openapi;
use kube_harden::yaml::emit::{block_value, Layout};
use serde_json::Value;

const SCHEMA_KEY: &str = "      openAPIV3Schema:";

fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).expect("function.yaml parses")
}

#[test]
fn function_yaml_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("function.yaml");
    let mut text = fs::read_to_string(&path).expect("function.yaml");
    let generated = openapi::policy_schema();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let at = text.find(SCHEMA_KEY).expect("an openAPIV3Schema line") + SCHEMA_KEY.len();
        text.truncate(at);
        text.push_str(&block_value(
            &generated,
            SCHEMA_KEY.len() - SCHEMA_KEY.trim_start().len(),
            &Layout::default(),
        ));
        fs::write(&path, &text).expect("rewrite function.yaml");
    }
    let docs = documents(&text);
    assert_eq!(
        docs.len(),
        2,
        "catalog metadata, then the KRMFunctionDefinition"
    );
    let (catalog, definition) = (&docs[0], &docs[1]);

    let version = env!("CARGO_PKG_VERSION");
    let image = catalog["image"].as_str().expect("image");
    assert!(
        image.ends_with(&format!(":v{version}")),
        "image {image} is not v{version}"
    );
    for field in ["description", "sourceURL", "license"] {
        assert!(catalog[field].is_string(), "catalog field {field}");
    }
    assert!(catalog["tags"]
        .as_array()
        .is_some_and(|t| t.contains(&"mutator".into())));

    assert_eq!(definition["apiVersion"], "config.kubernetes.io/v1alpha1");
    assert_eq!(definition["kind"], "KRMFunctionDefinition");
    let (group, version_name) = kube_harden::config::API_VERSION.split_once('/').unwrap();
    assert_eq!(definition["spec"]["group"], group);
    assert_eq!(
        definition["spec"]["names"]["kind"],
        kube_harden::config::KIND
    );
    let v = &definition["spec"]["versions"][0];
    assert_eq!(v["name"], version_name);
    assert_eq!(v["idempotent"], true);
    assert_eq!(v["runtime"]["container"]["image"], image);
    assert_eq!(
        v["schema"]["openAPIV3Schema"], generated,
        "function.yaml's schema drifted from the code: run `UPDATE_GOLDEN=1 cargo test --test function_yaml` and review the diff"
    );
}
