//! The crate's top-level modules import each other without a cycle.
//!
//! Reads `src/**/*.rs` of the library (the modules `lib.rs` declares) and of the binary (those
//! `main.rs` declares), strips comments, string and character literals and `#[cfg(test)]`
//! modules, and collects per top-level module the other top-level modules it names through
//! `crate::…` (a `use crate::{a, b::c}` group included) or through `super::` paths that climb to
//! the crate root. The graph must be acyclic; a failure prints the cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// `text` with comments and the contents of string and character literals removed (a literal
/// becomes `""`, so a `crate::x` inside one is not an import), keeping the rest as is.
fn strip_comments_and_literals(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == b'r' && matches!(next, Some(b'#') | Some(b'"')) && !ident_before(b, i) {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if c == b'\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let close = if next == Some(b'\\') {
                (i + 2..b.len()).find(|&j| b[j] == b'\'')
            } else {
                let ch_len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len)
            };
            match close {
                Some(j) => {
                    out.push_str("' '");
                    i = j + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..i + len]);
            i += len;
        }
    }
    out
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// `text` (already without comments and literals) without its `#[cfg(test)]` modules.
fn strip_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let item = after.trim_start();
        let words: Vec<&str> = item.split_whitespace().take(3).collect();
        let is_mod = words.first() == Some(&"mod")
            || (words.first() == Some(&"pub") && words.get(1) == Some(&"mod"));
        let brace = item.find(['{', ';']);
        match (is_mod, brace) {
            (true, Some(open)) if item.as_bytes()[open] == b'{' => {
                let bytes = item.as_bytes();
                let mut depth = 0usize;
                let mut end = item.len();
                for (j, &ch) in bytes.iter().enumerate().skip(open) {
                    match ch {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = j + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &item[end..];
            }
            // `#[cfg(test)] mod testing;`: the file itself is left out by its path.
            (true, Some(semi)) => rest = &item[semi + 1..],
            _ => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// The identifiers a `use crate::{…}` group names at its top level.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect = true;
    let mut word = String::new();
    for ch in group.chars() {
        if ch.is_alphanumeric() || ch == '_' {
            word.push(ch);
            continue;
        }
        if !word.is_empty() {
            if expect && depth == 0 {
                heads.push(std::mem::take(&mut word));
            }
            word.clear();
            expect = false;
        }
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => expect = true,
            _ => {}
        }
    }
    if !word.is_empty() && expect && depth == 0 {
        heads.push(word);
    }
    heads
}

/// The top-level modules `code` names, for a file whose module path is `module` (`["config",
/// "settings"]` for `src/config/settings.rs`).
fn named_modules(code: &str, module: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(at) = code[i..].find("crate::").map(|p| p + i) {
        i = at + "crate::".len();
        if at > 0 && (ident_before(bytes, at) || bytes[at - 1] == b'$') {
            continue;
        }
        let rest = &code[i..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, ch)| {
                    match ch {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(group.len(), |(j, _)| j);
            found.extend(group_heads(&group[..end]));
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    // `super::super::x` from `src/a/b.rs` reaches the crate root.
    let mut i = 0;
    while let Some(at) = code[i..].find("super::").map(|p| p + i) {
        if ident_before(bytes, at) || (at >= 2 && &code[at - 2..at] == "::") {
            i = at + 1;
            continue;
        }
        let mut j = at;
        let mut climbs = 0;
        while code[j..].starts_with("super::") {
            climbs += 1;
            j += "super::".len();
        }
        i = j;
        if climbs == module.len() {
            let name: String = code[j..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found.retain(|n| !n.is_empty() && n != "self");
    found
}

/// The modules a crate root declares (`mod x;`, `pub mod x;`).
fn declared_modules(root_file: &Path) -> Vec<String> {
    let text = strip_comments_and_literals(&fs::read_to_string(root_file).unwrap());
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The import graph of the top-level modules `modules` under `src`.
fn graph(src: &Path, modules: &[String]) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let mut module: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        let Some(top) = module.first().cloned() else {
            continue;
        };
        if !modules.contains(&top) {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        // `testing.rs`-style helpers included only under `#[cfg(test)]` in their parent.
        if is_test_only(&file) {
            continue;
        }
        let code = strip_test_modules(&strip_comments_and_literals(&text));
        for name in named_modules(&code, &module) {
            if name != top && modules.contains(&name) {
                graph.get_mut(&top).unwrap().insert(name);
            }
        }
    }
    graph
}

/// True when the parent module declares this file's module under `#[cfg(test)]`.
fn is_test_only(file: &Path) -> bool {
    let stem = file.file_stem().unwrap().to_string_lossy().to_string();
    let dir = file.parent().unwrap();
    let parents = [
        dir.join("mod.rs"),
        dir.with_extension("rs"),
        dir.join("lib.rs"),
    ];
    parents.iter().filter(|p| p.is_file()).any(|p| {
        let code = strip_comments_and_literals(&fs::read_to_string(p).unwrap());
        let decl = [format!("mod {stem};"), format!("mod {stem} {{")];
        code.match_indices("#[cfg(test)]").any(|(at, _)| {
            let after = code[at + "#[cfg(test)]".len()..].trim_start();
            let after = after.strip_prefix("pub ").unwrap_or(after);
            decl.iter().any(|d| after.starts_with(d.as_str()))
        })
    })
}

/// A cycle of `graph`, if it has one (first node repeated at the end).
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_string(), Mark::Open);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(next, graph, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New {
            let mut stack = Vec::new();
            if let Some(c) = visit(node, graph, &mut marks, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

fn render(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(k, v)| {
            format!(
                "  {k} -> {}",
                v.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn library_modules_import_each_other_without_a_cycle() {
    let modules = declared_modules(&src().join("lib.rs"));
    assert!(modules.len() >= 10, "lib.rs declares {modules:?}");
    let graph = graph(&src(), &modules);
    // The scanner sees the imports it must see (guards against a scanner that finds nothing).
    assert!(graph["engine"].contains("rules"), "{}", render(&graph));
    assert!(graph["rules"].contains("config"), "{}", render(&graph));
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle: {}\nthe graph:\n{}",
            cycle.join(" -> "),
            render(&graph)
        );
    }
}

#[test]
fn binary_modules_import_each_other_without_a_cycle() {
    let modules = declared_modules(&src().join("main.rs"));
    let graph = graph(&src(), &modules);
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle: {}\nthe graph:\n{}",
            cycle.join(" -> "),
            render(&graph)
        );
    }
}

#[test]
fn the_scanner_reads_groups_comments_literals_and_test_modules() {
    let code = r##"
        use crate::{a, b::{c, d}, e::f as g};
        // use crate::comment;
        /* crate::block /* nested crate::inner */ */
        let s = "crate::string"; let r = r#"crate::raw"#; let c = '"'; let l: &'static str = x;
        fn f() { crate::h::call(); super::super::k::m(); }
        #[cfg(test)]
        mod tests { use crate::tested; }
        use crate::last;
    "##;
    let code = strip_test_modules(&strip_comments_and_literals(code));
    let names = named_modules(&code, &["top".to_string(), "sub".to_string()]);
    let want: BTreeSet<String> = ["a", "b", "e", "h", "k", "last"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, want);
    let mut g = Graph::new();
    g.entry("x".into()).or_default().insert("y".into());
    g.entry("y".into()).or_default().insert("z".into());
    g.entry("z".into()).or_default().insert("x".into());
    assert_eq!(
        find_cycle(&g).unwrap(),
        ["x", "y", "z", "x"].map(String::from).to_vec()
    );
    g.get_mut("z").unwrap().clear();
    assert_eq!(find_cycle(&g), None);
}
