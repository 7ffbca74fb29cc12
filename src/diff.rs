//! `--diff`: the output as a unified diff against the input, one file at a time, so that
//! `patch -p0` applies it where the files are.

use std::ops::Range;

use similar::TextDiff;

/// Where one input file sits in the concatenated stream.
#[derive(Debug, Clone)]
pub struct Source {
    /// The name in the diff headers (the path as given, or `stdin`).
    pub name: String,
    /// Where the file's part of the stream starts: the `---` put between files, or its content.
    pub region_start: usize,
    /// The file's own bytes in the stream.
    pub content: Range<usize>,
}

/// The unified diffs of every file the run changes (empty when none changes).
pub fn unified(input: &[u8], sources: &[Source], output: &kube_harden::Output<'_>) -> String {
    let mut texts = vec![String::new(); sources.len()];
    for (chunk, &origin) in output.chunks.iter().zip(&output.origins) {
        // Documents go to the file they came from; a new budget follows its workload's.
        let i = sources
            .iter()
            .rposition(|s| s.region_start <= origin)
            .unwrap_or(0);
        chunk.pieces().for_each(|p| texts[i].push_str(p));
    }
    let mut out = String::new();
    for (i, (source, new)) in sources.iter().zip(&texts).enumerate() {
        let old = String::from_utf8_lossy(&input[source.content.clone()]);
        let mut new = new.as_str();
        // Take back what joining the files added: the `---` before this file and the newline
        // after it.
        if let Some(rest) =
            new.strip_prefix(lossy(&input[source.region_start..source.content.start]))
        {
            new = rest;
        }
        let added_after = match sources.get(i + 1) {
            Some(next) => &input[source.content.end..next.region_start],
            None => &[][..],
        };
        if let Some(rest) = new.strip_suffix(lossy(added_after)) {
            new = rest;
        }
        if old == new {
            continue;
        }
        let diff = TextDiff::from_lines(old.as_ref(), new);
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&source.name, &source.name)
                .to_string(),
        );
    }
    out
}

/// Bytes that are ASCII by construction (`---\n`, `\n`) as text.
fn lossy(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("")
}
