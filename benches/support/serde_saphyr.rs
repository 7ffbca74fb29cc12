//! The serde-saphyr baseline of the benchmarks.

/// A reference: serde-saphyr (YAML 1.1 octal on, no budget) into serde_json values and back.
pub fn serde_saphyr_round_trip(input: &str) -> String {
    let options = serde_saphyr::options! { legacy_octal_numbers: true, budget: None };
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple_with_options(input, options).expect("parses");
    let mut out = String::with_capacity(input.len());
    for d in &docs {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(d).expect("emits"));
    }
    out
}
