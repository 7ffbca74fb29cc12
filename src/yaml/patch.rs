//! Writes a changed document by editing its original text: new keys and items are inserted where
//! a person would write them, everything else (comments, quoting, key order, `0644`) stays as it
//! was. Every patched document is parsed again and compared with the intended value; when the
//! text edit cannot express the change, the document is re-emitted in block style instead.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::emit::{self, Layout};
use super::tree::{after_colon, dash_column, parse_document, scalar_value, Data, Document, Node};

/// One text edit: replace `len` bytes at `at` with `text`.
#[derive(Debug)]
struct Edit {
    at: usize,
    len: usize,
    text: String,
}

/// Why the text could not be edited in place.
#[derive(Debug)]
struct Unsupported;

/// Where a node sits, which decides how a replacement is written.
#[derive(Clone, Copy)]
enum Slot {
    /// The document root.
    Root,
    /// The value of a block mapping key whose `:` ends at `after_colon`; `indent` is the key's column.
    BlockValue { after_colon: usize, indent: usize },
    /// An item of a block sequence.
    BlockItem,
    /// Anywhere inside a flow collection.
    Flow,
}

/// How the document was written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchMode {
    /// Edited in place.
    Edited,
    /// Re-emitted in block style (header comments kept, inner comments lost).
    Reemitted,
}

/// How new text in the document `text` (parsed as `doc`) is laid out: its own indentation step,
/// sequence style and line endings.
pub fn layout_of(text: &str, doc: &Document<'_>) -> Layout {
    Layout {
        indent_step: doc.indent_step,
        compact_sequences: doc.compact_sequences,
        newline: if memchr::memmem::find(text.as_bytes(), b"\r\n").is_some() {
            "\r\n"
        } else {
            "\n"
        },
    }
}

/// Writes `new` as the content of the document `text` (parsed as `doc`).
pub fn patch_document(text: &str, doc: &Document<'_>, new: &Value) -> (String, PatchMode) {
    match patch(text, doc, new) {
        Written::Edited(p) => (p.text(), PatchMode::Edited),
        Written::Reemitted(out) => (out, PatchMode::Reemitted),
    }
}

/// A changed document as [`patch`] writes it.
#[derive(Debug)]
pub enum Written<'a> {
    /// Edited in place: the original text and the edits.
    Edited(Patched<'a>),
    /// Re-emitted in block style.
    Reemitted(String),
}

/// A document edited in place, held as its original text plus the edits rather than a copy:
/// the original stays in memory anyway (the output borrows it for untouched documents), so a
/// stream's edited documents cost what was added, not their whole size again.
#[derive(Debug)]
pub struct Patched<'a> {
    base: &'a str,
    /// Every edit's new text, one after the other.
    added: String,
    /// Per edit, in text order: where it starts in `base`, how many bytes of `base` it replaces,
    /// and where its new text ends in `added`.
    edits: Vec<(usize, usize, usize)>,
}

impl<'a> Patched<'a> {
    /// The document's text in pieces, in order: slices of the original and new text.
    pub fn pieces(&self) -> impl Iterator<Item = &str> + '_ {
        let mut cursor = 0;
        let mut added_from = 0;
        self.edits
            .iter()
            .flat_map(move |&(at, len, added_to)| {
                let kept = &self.base[cursor..at];
                let new = &self.added[added_from..added_to];
                cursor = at + len;
                added_from = added_to;
                [kept, new]
            })
            .chain(std::iter::once_with(move || {
                let last = self.edits.last().map_or(0, |&(at, len, _)| at + len);
                &self.base[last..]
            }))
            .filter(|p| !p.is_empty())
    }

    /// The length of the text in bytes.
    pub fn len(&self) -> usize {
        self.base.len() + self.added.len() - self.edits.iter().map(|e| e.1).sum::<usize>()
    }

    /// True when the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole text.
    pub fn text(&self) -> String {
        let mut text = String::with_capacity(self.len());
        self.pieces().for_each(|p| text.push_str(p));
        text
    }

    /// Where the byte at `pos` of the original text is in the patched text, after everything
    /// inserted at `pos` itself.
    pub fn offset_after(&self, pos: usize) -> usize {
        let mut shift = 0isize;
        let mut added_from = 0;
        for &(at, len, added_to) in &self.edits {
            if at > pos {
                break;
            }
            shift += (added_to - added_from) as isize - len as isize;
            added_from = added_to;
        }
        (pos as isize + shift) as usize
    }

    /// Its edits in text order: where each starts in the original text, how many bytes of it
    /// it replaces, and its new text.
    pub fn edits(&self) -> impl Iterator<Item = (usize, usize, &str)> + '_ {
        let mut added_from = 0;
        self.edits.iter().map(move |&(at, len, added_to)| {
            let new = &self.added[added_from..added_to];
            added_from = added_to;
            (at, len, new)
        })
    }

    /// `base` edited: `edits` as [`Patched::edits`] gives them, but with the end of each one's
    /// new text in `added` (the edits' texts one after the other). `None` unless the edits are
    /// in text order, do not overlap, and cut neither text inside a character.
    pub fn from_edits(
        base: &'a str,
        added: String,
        edits: Vec<(usize, usize, usize)>,
    ) -> Option<Self> {
        let (mut cursor, mut added_from) = (0, 0);
        for &(at, len, added_to) in &edits {
            let end = at.checked_add(len)?;
            if at < cursor
                || end > base.len()
                || !base.is_char_boundary(at)
                || !base.is_char_boundary(end)
                || added_to < added_from
                || added_to > added.len()
                || !added.is_char_boundary(added_to)
            {
                return None;
            }
            (cursor, added_from) = (end, added_to);
        }
        (added_from == added.len()).then_some(Patched { base, added, edits })
    }

    /// The last byte of the text.
    pub fn last_byte(&self) -> Option<u8> {
        self.pieces()
            .last()
            .and_then(|p| p.as_bytes().last().copied())
    }
}

/// Writes `new` as the content of the document `text` (parsed as `doc`): edited in place when
/// the edit reads back as `new`, else re-emitted.
pub fn patch<'a>(text: &'a str, doc: &Document<'_>, new: &Value) -> Written<'a> {
    let layout = layout_of(text, doc);
    if let (Some(root), false) = (&doc.root, doc.uses_aliases) {
        // Lines are inserted right after the content they follow. When that does not read back
        // (the blank lines after a `|+`/`>+` block scalar are part of its value), once more with
        // inserted lines placed after any blank lines.
        for past_blank_lines in [false, true] {
            let mut edits = Vec::new();
            let mut patcher = Patcher {
                text,
                layout: &layout,
                edits: &mut edits,
                past_blank_lines,
            };
            if patcher.walk(root, new, Slot::Root).is_err() {
                break;
            }
            // Lines added at the end of a text without a final line break begin with one, which
            // would become part of a final `|`/`>` block scalar: make it strip that break.
            if !text.ends_with(['\n', '\r']) && edits.iter().any(|e| e.at == text.len()) {
                if let Some((at, len, header)) = strip_final_block_scalar(text, doc) {
                    edits.push(Edit {
                        at,
                        len,
                        text: header,
                    });
                }
            }
            if let Some(patched) = apply(text, edits) {
                if reads_back_as(&patched.text(), new) {
                    return Written::Edited(patched);
                }
            }
        }
    }
    Written::Reemitted(reemit(text, doc, new, &layout))
}

/// The node written last in a document: the last entry's value, the last item, recursively.
fn last_node<'n, 'a>(node: &'n Node<'a>) -> &'n Node<'a> {
    match &node.data {
        Data::Map { entries, .. } => entries.last().map_or(node, |e| last_node(&e.value)),
        Data::Seq { items, .. } => items.last().map_or(node, last_node),
        _ => node,
    }
}

/// For a document whose text ends, without a final line break, in a `|` or `>` block scalar
/// with clip or keep chomping: the edit `(at, len, new header)` that gives the scalar strip
/// chomping (`|-`), so a line break written after it (new lines, the next document) does not
/// become part of its value. `None` when there is no such scalar or its value ends with a line
/// break (strip could not express it). The header is found textually; callers check the result
/// by reading it back.
pub fn strip_final_block_scalar(text: &str, doc: &Document<'_>) -> Option<(usize, usize, String)> {
    if text.ends_with(['\n', '\r']) {
        return None;
    }
    let last = last_node(doc.root.as_ref()?);
    let Data::Scalar {
        text: value,
        style: saphyr_parser::ScalarStyle::Literal | saphyr_parser::ScalarStyle::Folded,
        ..
    } = &last.data
    else {
        return None;
    };
    if value.ends_with('\n') || text.get(last.end..)?.contains('\n') {
        return None;
    }
    // The header is on the last line before the content that is not blank (leading blank
    // lines belong to the content).
    let bytes = text.as_bytes();
    let mut line_end = text[..last.start].rfind('\n')?;
    loop {
        let line_start = text[..line_end].rfind('\n').map_or(0, |i| i + 1);
        if text[line_start..line_end].trim().is_empty() {
            line_end = line_start.checked_sub(1)?;
            continue;
        }
        // The first `|`/`>` that starts a token and is followed by indicators and then a blank,
        // a comment or the end of the line.
        for p in line_start..line_end {
            if !matches!(bytes[p], b'|' | b'>')
                || (p > line_start && !matches!(bytes[p - 1], b' ' | b'\t'))
            {
                continue;
            }
            let mut q = p + 1;
            while q < line_end && q < p + 3 && matches!(bytes[q], b'0'..=b'9' | b'+' | b'-') {
                q += 1;
            }
            if q < line_end && !matches!(bytes[q], b' ' | b'\t' | b'\r') {
                continue;
            }
            let indicators = &text[p + 1..q];
            if indicators.contains('-') {
                return None;
            }
            let digits: String = indicators.chars().filter(char::is_ascii_digit).collect();
            return Some((p, q - p, format!("{}{digits}-", bytes[p] as char)));
        }
        return None;
    }
}

/// `text` (a whole stream or file) ending with a line break, so that another document can
/// follow it, without changing what any of its values mean: a final `|`/`>` block scalar that
/// runs to the end of the text gets strip chomping first (its value has no final line break,
/// and would gain one).
pub fn with_final_line_break(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    if text.is_empty() || text.ends_with(['\n', '\r']) {
        out.push_str(text);
        return out;
    }
    let last = super::split::split_documents(text)
        .pop()
        .map_or(0, |seg| seg.start);
    let segment = &text[last..];
    if let Ok(doc) = parse_document(segment) {
        if let Some((at, len, header)) = strip_final_block_scalar(segment, &doc) {
            let edited = format!("{}{header}{}\n", &segment[..at], &segment[at + len..]);
            let before = doc.root.as_ref().map(Node::to_value);
            let after = parse_document(&edited)
                .ok()
                .and_then(|d| d.root.map(|r| r.to_value()));
            if before.is_some() && before == after {
                out.push_str(&text[..last]);
                out.push_str(&edited);
                return out;
            }
        }
    }
    out.push_str(text);
    out.push('\n');
    out
}

fn reads_back_as(text: &str, expected: &Value) -> bool {
    if let Some(verdict) = super::verify::reads_back_as(text, expected) {
        return verdict;
    }
    match parse_document(text) {
        Ok(d) => d.root.map(|r| r.to_value()).as_ref() == Some(expected),
        Err(_) => false,
    }
}

/// The document's heading lines (`---`, comments) followed by `new` in block style.
fn reemit(text: &str, doc: &Document<'_>, new: &Value, layout: &Layout) -> String {
    let content_start = doc.root.as_ref().map_or(text.len(), |r| r.start);
    let head_end = text[..content_start].rfind('\n').map_or(0, |i| i + 1);
    let mut head = text[..head_end].to_string();
    let head_has_marker = head.lines().any(|l| l.trim_end() == "---");
    if !head_has_marker
        && text[..content_start]
            .trim_start_matches('\u{feff}')
            .starts_with("---")
    {
        head.push_str("---");
        head.push_str(layout.newline);
    }
    let mut out = head + &body(doc, new, layout);
    // Keep a closing `...` line (and whatever follows it in the segment).
    let content_end = doc.root.as_ref().map_or(0, |r| r.end);
    if let Some(i) = text[content_end..].find("\n...") {
        out.push_str(&text[content_end + i + 1..]);
    }
    out
}

/// The re-emitted body: `!!binary`, `!!str` and custom tags (`!foo`) are written as in the
/// source, with the source text, wherever the value there still means what it meant and the
/// text reads back as `new`; other tags (`!!int`, ...) are written as their resolved value.
fn body(doc: &Document<'_>, new: &Value, layout: &Layout) -> String {
    let Some(root) = doc.root.as_ref().filter(|r| has_kept_tag(r)) else {
        return emit::document(new, layout);
    };
    let mut tags = emit::SourceTags::new();
    let mut anchors = std::collections::HashMap::new();
    collect_tags(root, &mut Vec::new(), &mut anchors, &mut tags);
    if tags.is_empty() {
        return emit::document(new, layout);
    }
    let text = emit::document_with_tags(new, layout, &tags);
    match parse_document(&text) {
        Ok(d) if d.root.as_ref().map(|r| r.to_value()).as_ref() == Some(new) => text,
        _ => emit::document(new, layout),
    }
}

/// How a kept tag is written, or `None` for a tag written as its resolved value.
fn tag_spelling(tag: &str) -> Option<String> {
    match tag {
        "binary" | "str" => Some(format!("!!{tag}")),
        "int" | "bool" | "float" | "null" | "timestamp" | "map" | "seq" | "merge" | "value" => None,
        t if t.starts_with('!') => Some(t.to_string()),
        t => Some(format!("!<{t}>")),
    }
}

fn has_kept_tag(node: &Node<'_>) -> bool {
    match &node.data {
        Data::Scalar { tag: Some(t), .. } => tag_spelling(t).is_some(),
        Data::Scalar { .. } | Data::Alias(_) => false,
        Data::Map { entries, .. } => entries.iter().any(|e| has_kept_tag(&e.value)),
        Data::Seq { items, .. } => items.iter().any(has_kept_tag),
    }
}

/// Records every kept tag by the path its value has in the document's meaning (aliases
/// expanded; values merged through `<<` are left out and written resolved).
fn collect_tags<'n, 'a>(
    node: &'n Node<'a>,
    path: &mut Vec<emit::Step>,
    anchors: &mut std::collections::HashMap<usize, &'n Node<'a>>,
    out: &mut emit::SourceTags,
) {
    if node.anchor != 0 {
        anchors.insert(node.anchor, node);
    }
    match &node.data {
        Data::Scalar {
            text, tag: Some(t), ..
        } => {
            if let Some(spelling) = tag_spelling(t) {
                out.insert(
                    path.clone(),
                    (spelling, text.to_string(), scalar_value(node)),
                );
            }
        }
        Data::Scalar { .. } => {}
        Data::Alias(id) => {
            if let Some(&target) = anchors.get(id) {
                collect_tags(target, path, anchors, out);
            }
        }
        Data::Map { entries, .. } => {
            for e in entries {
                let merge = e.key == "<<"
                    && matches!(
                        &e.key_node.data,
                        Data::Scalar {
                            style: saphyr_parser::ScalarStyle::Plain,
                            ..
                        }
                    );
                if merge {
                    continue;
                }
                path.push(emit::Step::Key(e.key.clone()));
                collect_tags(&e.value, path, anchors, out);
                path.pop();
            }
        }
        Data::Seq { items, .. } => {
            for (i, item) in items.iter().enumerate() {
                path.push(emit::Step::Index(i));
                collect_tags(item, path, anchors, out);
                path.pop();
            }
        }
    }
}

fn apply(text: &str, mut edits: Vec<Edit>) -> Option<Patched<'_>> {
    // Stable: edits at one position keep the order they were made in (inner content first).
    edits.sort_by_key(|e| e.at);
    let mut added = String::with_capacity(edits.iter().map(|e| e.text.len()).sum::<usize>());
    let mut spans = Vec::with_capacity(edits.len());
    let mut cursor = 0;
    for e in edits {
        if e.at < cursor || e.at + e.len > text.len() {
            return None;
        }
        added.push_str(&e.text);
        spans.push((e.at, e.len, added.len()));
        cursor = e.at + e.len;
    }
    Some(Patched {
        base: text,
        added,
        edits: spans,
    })
}

struct Patcher<'t, 'l, 'e> {
    text: &'t str,
    layout: &'l Layout,
    edits: &'e mut Vec<Edit>,
    /// Insert new lines after the blank lines that follow the content, not before them.
    past_blank_lines: bool,
}

impl Patcher<'_, '_, '_> {
    fn insert(&mut self, at: usize, text: String) {
        self.edits.push(Edit { at, len: 0, text });
    }

    /// Byte offset just past the end of the line holding `pos`, and whether a newline must be
    /// added first (last line without one).
    fn after_line(&self, pos: usize) -> (usize, bool) {
        match self.text[pos..].find('\n') {
            Some(i) => (pos + i + 1, false),
            None => (self.text.len(), true),
        }
    }

    fn insert_lines_after(&mut self, pos: usize, lines: String) {
        let (mut at, needs_newline) = self.after_line(pos);
        if self.past_blank_lines && !needs_newline {
            // Only whole blank lines, each ending in a line break.
            while let Some(len) = self.text[at..].find('\n') {
                if !self.text[at..at + len].trim().is_empty() {
                    break;
                }
                at += len + 1;
            }
        }
        // Only the first of several insertions at the end of a text without a final line break
        // writes that line break; the others already start on a line of their own.
        let at_end_has_newline = self.edits.iter().any(|e| e.at == at && e.len == 0);
        let text = if needs_newline && !at_end_has_newline {
            format!("{}{}", self.layout.newline, lines)
        } else {
            lines
        };
        self.insert(at, text);
    }

    fn walk(&mut self, node: &Node<'_>, new: &Value, slot: Slot) -> Result<(), Unsupported> {
        /// Up to this many entries a mapping's keys are searched, not hashed.
        const SMALL_MAP: usize = 16;
        match (&node.data, new) {
            (Data::Map { entries, flow }, Value::Object(new_map)) => {
                let mut added = Map::new();
                // Each key's (last) entry by key: looking keys up one by one in the list would
                // be quadratic in a mapping's size (annotations with 100k keys). A small mapping
                // (most of them) is searched from its end instead of hashing every key.
                let by_key: Option<HashMap<&str, usize>> = (entries.len() > SMALL_MAP).then(|| {
                    entries
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (e.key.as_str(), i))
                        .collect()
                });
                let find = |key: &str| match &by_key {
                    Some(by_key) => by_key.get(key).copied(),
                    None => entries.iter().rposition(|e| e.key == key),
                };
                // Keys of the new mapping found among the entries: all of the entries when it
                // is their number (a key written twice leaves it short, and is checked below).
                let mut found = 0usize;
                for (key, value) in new_map {
                    match find(key.as_str()) {
                        Some(i) => {
                            found += 1;
                            let e = &entries[i];
                            let child_slot = if *flow {
                                Slot::Flow
                            } else {
                                Slot::BlockValue {
                                    after_colon: after_colon(self.text, e.key_node.end),
                                    indent: node.col,
                                }
                            };
                            self.walk(&e.value, value, child_slot)?;
                        }
                        None => {
                            added.insert(key.clone(), value.clone());
                        }
                    }
                }
                if found != entries.len() && entries.iter().any(|e| !new_map.contains_key(&e.key)) {
                    return Err(Unsupported);
                }
                if added.is_empty() {
                    return Ok(());
                }
                if *flow {
                    self.add_to_flow(node, entries.is_empty(), slot, new, |out| {
                        for (i, (k, v)) in added.iter().enumerate() {
                            if i > 0 {
                                out.push_str(", ");
                            }
                            out.push_str(&emit::double_quoted(k));
                            out.push_str(": ");
                            out.push_str(&emit::flow(v));
                        }
                    })
                } else {
                    let mut lines = String::new();
                    emit::mapping_entries(&mut lines, &added, node.col, self.layout);
                    self.insert_lines_after(node.end, lines);
                    Ok(())
                }
            }
            (Data::Seq { items, flow }, Value::Array(new_items)) => {
                if new_items.len() < items.len() {
                    return Err(Unsupported);
                }
                for (item, value) in items.iter().zip(new_items) {
                    let child_slot = if *flow { Slot::Flow } else { Slot::BlockItem };
                    self.walk(item, value, child_slot)?;
                }
                let extra = &new_items[items.len()..];
                if extra.is_empty() {
                    return Ok(());
                }
                if *flow {
                    self.add_to_flow(node, items.is_empty(), slot, new, |out| {
                        for (i, v) in extra.iter().enumerate() {
                            if i > 0 {
                                out.push_str(", ");
                            }
                            out.push_str(&emit::flow(v));
                        }
                    })
                } else {
                    let dash = dash_column(self.text, node.start).ok_or(Unsupported)?;
                    let mut lines = String::new();
                    emit::sequence_items(&mut lines, extra, dash, self.layout);
                    self.insert_lines_after(node.end, lines);
                    Ok(())
                }
            }
            (Data::Scalar { style, .. }, _) => {
                if scalar_value(node) == *new {
                    return Ok(());
                }
                let block_scalar = matches!(
                    style,
                    saphyr_parser::ScalarStyle::Literal | saphyr_parser::ScalarStyle::Folded
                );
                if !emit::needs_block(new) {
                    if block_scalar {
                        return Err(Unsupported);
                    }
                    let text = match (slot, style, new) {
                        // A string replacing a quoted string keeps the user's quotes.
                        (_, saphyr_parser::ScalarStyle::DoubleQuoted, Value::String(s)) => {
                            emit::double_quoted(s)
                        }
                        (_, saphyr_parser::ScalarStyle::SingleQuoted, Value::String(s))
                            if !s.chars().any(emit::needs_escape) =>
                        {
                            format!("'{}'", s.replace('\'', "''"))
                        }
                        (Slot::Flow, _, _) => emit::flow(new),
                        _ => emit::scalar(new),
                    };
                    self.edits.push(Edit {
                        at: node.start,
                        len: node.end - node.start,
                        text,
                    });
                    return Ok(());
                }
                if !scalar_value(node).is_null() {
                    return Err(Unsupported);
                }
                self.replace_in_slot(node, new, slot)
            }
            _ => Err(Unsupported),
        }
    }

    /// Adds entries or items to a flow collection: before the closing bracket, or, for an empty
    /// `{}`/`[]` that is a block mapping value, by rewriting it as a block.
    fn add_to_flow(
        &mut self,
        node: &Node<'_>,
        empty: bool,
        slot: Slot,
        new: &Value,
        write: impl FnOnce(&mut String),
    ) -> Result<(), Unsupported> {
        if empty {
            if let Slot::BlockValue { .. } = slot {
                return self.replace_in_slot(node, new, slot);
            }
        }
        let is_close = |i: usize| matches!(self.text.as_bytes().get(i), Some(b'}' | b']'));
        let mut close = node.end.checked_sub(1).ok_or(Unsupported)?;
        if !is_close(close) {
            // After a trailing comma (`{a: 1, }`) the parser's span stops at the comma; the
            // bracket follows after blanks.
            let rest = self.text.get(node.end..).ok_or(Unsupported)?;
            close = node.end + (rest.len() - rest.trim_start().len());
            if !is_close(close) {
                return Err(Unsupported);
            }
        }
        // Insert right after the last non-blank character before the closing bracket, so a
        // multi-line JSON object keeps its closing line.
        let kept = self.text[node.start + 1..close].trim_end();
        let at = node.start + 1 + kept.len();
        let trailing_comma = kept.ends_with(',');
        let mut text = String::new();
        // A tag needs a blank after it: Kubernetes' YAML reader would take `!x,` as the tag `!x,`.
        let last_token = &kept[kept
            .rfind([' ', '\t', '\n', '\r', '[', '{', ','])
            .map_or(0, |i| i + 1)..];
        if trailing_comma {
            text.push(' ');
        } else if !empty {
            if last_token.starts_with('!') {
                text.push(' ');
            }
            text.push_str(", ");
        }
        write(&mut text);
        if trailing_comma {
            text.push(',');
        }
        self.insert(at, text);
        Ok(())
    }

    /// Replaces an empty value (`null`, nothing, `{}`, `[]`) held by a block mapping key with a
    /// block written on the following lines.
    fn replace_in_slot(
        &mut self,
        node: &Node<'_>,
        new: &Value,
        slot: Slot,
    ) -> Result<(), Unsupported> {
        match slot {
            Slot::BlockValue {
                after_colon,
                indent,
            } => {
                if node.end < after_colon {
                    return Err(Unsupported);
                }
                let block = emit::block_value(new, indent, self.layout);
                // Keep whatever followed the old value on its line (a comment) on its own line.
                let (line_end, needs_newline) = self.after_line(node.end.max(after_colon));
                let rest_of_line = &self.text[node.end..line_end];
                let rest = rest_of_line.trim_end_matches(['\n', '\r']);
                let mut text = block.trim_end_matches(['\n', '\r']).to_string();
                if !rest.trim().is_empty() {
                    text.push_str(self.layout.newline);
                    text.push_str(&" ".repeat(indent));
                    text.push_str(rest.trim());
                }
                if !needs_newline {
                    text.push_str(self.layout.newline);
                }
                self.edits.push(Edit {
                    at: after_colon,
                    len: line_end - after_colon,
                    text,
                });
                Ok(())
            }
            Slot::Flow => {
                self.edits.push(Edit {
                    at: node.start,
                    len: node.end - node.start,
                    text: emit::flow(new),
                });
                Ok(())
            }
            Slot::Root | Slot::BlockItem => Err(Unsupported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(text: &str, f: impl FnOnce(&mut Value)) -> (String, PatchMode) {
        let doc = parse_document(text).unwrap();
        let mut v = doc.root.as_ref().unwrap().to_value();
        f(&mut v);
        patch_document(text, &doc, &v)
    }

    #[test]
    fn patched_from_its_edits_and_back() {
        let base = "a: 1\nb: 2\nc: é\n";
        let p = Patched::from_edits(base, "xyz".into(), vec![(0, 1, 1), (5, 0, 3)]).unwrap();
        assert_eq!(p.text(), "x: 1\nyzb: 2\nc: é\n");
        assert_eq!(
            p.edits().collect::<Vec<_>>(),
            vec![(0, 1, "x"), (5, 0, "yz")]
        );
        let again: Vec<_> = p.edits().map(|(at, len, _)| (at, len)).collect();
        assert_eq!(again, vec![(0, 1), (5, 0)]);
        // Out of order, overlapping, past the end, inside a character, text left over.
        for edits in [
            vec![(5, 0, 1), (0, 1, 3)],
            vec![(0, 3, 1), (2, 0, 3)],
            vec![(0, 1, 1), (15, 2, 3)],
            vec![(0, 1, 1), (14, 0, 3)],
            vec![(0, 1, 1)],
        ] {
            assert!(
                Patched::from_edits(base, "xyz".into(), edits.clone()).is_none(),
                "{edits:?}"
            );
        }
        assert!(
            Patched::from_edits(base, String::new(), Vec::new()).is_some_and(|p| p.text() == base)
        );
    }

    /// Issue 13, item 4: a re-emitted document keeps `!!binary`, `!!str` and custom tags where
    /// the value is unchanged; a changed value, and `!!int` and the like, are written resolved.
    #[test]
    fn reemit_keeps_tags_of_unchanged_values() {
        let text = "a: &a !foo on\nb: *a\nc: !!binary aGk=\nd: !foo x\ne: !!int \"7\"\nm:\n  <<: {f: !foo 1}\n";
        let (out, mode) = patched(text, |v| {
            v["d"] = json!("changed");
            v["g"] = json!(1);
        });
        assert_eq!(mode, PatchMode::Reemitted);
        assert_eq!(
            out,
            "a: !foo on\nb: !foo on\nc: !!binary aGk=\nd: changed\ne: 7\nm:\n  f: \"1\"\ng: 1\n"
        );
        let back = parse_document(&out).unwrap().root.unwrap().to_value();
        assert_eq!(back["a"], json!("on"));
        assert_eq!(back["c"], json!("hi"));
    }

    #[test]
    fn a_block_scalar_at_the_end_keeps_its_value_when_lines_follow() {
        for (text, header) in [
            ("spec:\n  args:\n  - |\n    hello", "|-"),
            (
                "spec:\n  args:\n  - |+ # keep\n    hello\n\n    world",
                "|- # keep",
            ),
            ("spec:\n  args:\n  - >2\n      hello", ">2-"),
            ("spec:\n  args:\n  - |-\n    hello", "|-"),
        ] {
            let (out, mode) = patched(text, |v| {
                v["spec"]["x"] = json!(1);
            });
            assert_eq!(mode, PatchMode::Edited, "{text:?}");
            assert!(out.contains(&format!("- {header}\n")), "{out}");
            assert!(out.ends_with("\n  x: 1\n"), "{out}");
        }
    }

    #[test]
    fn a_final_line_break_does_not_change_values() {
        for (text, want) in [
            ("a: 1\n---\nb: |\n  hello", "a: 1\n---\nb: |-\n  hello\n"),
            ("b: >+\n  hello", "b: >-\n  hello\n"),
            ("b: |\n  hello\n", "b: |\n  hello\n"),
            ("b: hello", "b: hello\n"),
            ("", ""),
        ] {
            assert_eq!(with_final_line_break(text), want, "{text:?}");
        }
    }

    #[test]
    fn large_mappings_are_edited_in_place_in_linear_time() {
        // 100k annotations: each key used to be looked up with a scan of the entries.
        let mut text = String::from("metadata:\n  annotations:\n");
        for i in 0..100_000 {
            text.push_str(&format!("    k{i}: v{i}\n"));
        }
        text.push_str("spec: {}\n");
        let (out, mode) = patched(&text, |v| {
            v["metadata"]["annotations"]["new"] = json!("x");
        });
        assert_eq!(mode, PatchMode::Edited);
        assert!(out.ends_with("    k99999: v99999\n    new: x\nspec: {}\n"));
    }

    #[test]
    fn appends_to_an_indented_block_sequence_in_place() {
        // The parser's span of an indented sequence starts at its first dash.
        let text = "spec:\n  volumes:\n    - name: a # first\n      emptyDir: {}\n";
        let (out, mode) = patched(text, |v| {
            v["spec"]["volumes"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "tmp", "emptyDir": {}}));
        });
        assert_eq!(mode, PatchMode::Edited);
        assert_eq!(
            out,
            "spec:\n  volumes:\n    - name: a # first\n      emptyDir: {}\n    - name: tmp\n      emptyDir: {}\n"
        );
    }

    /// Found by the `list` fuzz target (fuzz/regressions/list-flow-entry-after-a-tag.yaml): an
    /// entry added after an empty tagged value (`{a: !}`) was joined to the tag (`!, b: 1`), which
    /// Kubernetes' YAML reader reads as the tag `!,`.
    #[test]
    fn adds_to_a_flow_mapping_after_a_tag_with_a_blank() {
        let (out, mode) = patched("m: {a: 1, c: ! }\n", |v| {
            v["m"]["b"] = json!(2);
        });
        assert_eq!(mode, PatchMode::Edited);
        assert_eq!(out, "m: {a: 1, c: ! , \"b\": 2 }\n");
    }

    #[test]
    fn adds_to_a_flow_mapping_with_a_trailing_comma_in_place() {
        let text = "{\n  kind: \"Pod\", # json-ish\n  metadata: {\n    name: \"p\",\n  },\n}\n";
        let (out, mode) = patched(text, |v| {
            v["metadata"]["labels"] = json!({"a": "b"});
        });
        assert_eq!(mode, PatchMode::Edited);
        assert_eq!(
            out,
            "{\n  kind: \"Pod\", # json-ish\n  metadata: {\n    name: \"p\", \"labels\": {\"a\":\"b\"},\n  },\n}\n"
        );
    }

    #[test]
    fn inserts_after_the_blank_lines_a_keep_block_scalar_owns() {
        let text = "a:\n  s: |+\n    text\n\n# note\nb: 1\n";
        let (out, mode) = patched(text, |v| {
            v["a"]["t"] = json!(1);
        });
        assert_eq!(mode, PatchMode::Edited);
        assert_eq!(out, "a:\n  s: |+\n    text\n\n  t: 1\n# note\nb: 1\n");
        // Elsewhere new lines go right after the content, before blank lines.
        let (out, _) = patched("a:\n  s: x\n\nb: 1\n", |v| v["a"]["t"] = json!(1));
        assert_eq!(out, "a:\n  s: x\n  t: 1\n\nb: 1\n");
    }

    #[test]
    fn an_edited_document_holds_only_its_edits() {
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: x\n";
        let doc = parse_document(text).unwrap();
        let mut v = doc.root.as_ref().unwrap().to_value();
        v["spec"]["containers"][0]["image"] = json!("x@sha256:0");
        v["spec"]["hostNetwork"] = json!(false);
        let Written::Edited(p) = patch(text, &doc, &v) else {
            panic!("not edited in place")
        };
        let whole = p.text();
        assert_eq!(whole, patched(text, |n| *n = v.clone()).0);
        assert_eq!(p.len(), whole.len());
        assert_eq!(p.last_byte(), Some(b'\n'));
        assert!(p.pieces().all(|piece| !piece.is_empty()));
        // Only the new text is owned; the rest borrows the original.
        assert!(p.added.len() < 40, "{:?}", p.added);
        assert!(p
            .pieces()
            .any(|piece| std::ptr::eq(piece.as_ptr(), text.as_ptr())));
    }

    #[test]
    fn inserts_keys_keeping_everything_else() {
        let text = "# Source: x\napiVersion: v1 # keep\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: x\n    # trailing comment\n  - name: b\n    image: y\n  mode: 0644\n";
        let (out, mode) = patched(text, |v| {
            v["spec"]["containers"][0]["securityContext"] =
                json!({"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}});
            v["spec"]["securityContext"] = json!({"seccompProfile": {"type": "RuntimeDefault"}});
            v["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "c"}));
        });
        assert_eq!(mode, PatchMode::Edited);
        assert_eq!(
            out,
            "# Source: x\napiVersion: v1 # keep\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: x\n    securityContext:\n      runAsNonRoot: true\n      capabilities:\n        drop:\n        - ALL\n    # trailing comment\n  - name: b\n    image: y\n  - name: c\n  mode: 0644\n  securityContext:\n    seccompProfile:\n      type: RuntimeDefault\n"
        );
    }

    #[test]
    fn fills_empty_values() {
        let text = "a: {}\nb:\nc: null # why\nd: []\ne: {x: 1}\n";
        let (out, mode) = patched(text, |v| {
            v["a"] = json!({"k": 1});
            v["b"] = json!({"k": 2});
            v["c"] = json!({"k": 3});
            v["d"] = json!(["z"]);
            v["e"]["y"] = json!("on");
        });
        assert_eq!(mode, PatchMode::Edited);
        assert_eq!(
            out,
            "a:\n  k: 1\nb:\n  k: 2\nc:\n  k: 3\n# why\nd:\n- z\ne: {x: 1, \"y\": \"on\"}\n"
        );
    }

    #[test]
    fn json_documents_stay_json() {
        let text = "{\"kind\": \"Pod\", \"spec\": {\"containers\": [{\"name\": \"a\"}]}}\n";
        let (out, mode) = patched(text, |v| {
            v["spec"]["containers"][0]["securityContext"] = json!({"privileged": false});
        });
        assert_eq!(mode, PatchMode::Edited);
        assert_eq!(out, "{\"kind\": \"Pod\", \"spec\": {\"containers\": [{\"name\": \"a\", \"securityContext\": {\"privileged\":false}}]}}\n");
    }

    #[test]
    fn crlf_and_wide_sequences() {
        let text = "spec:\r\n    list:\r\n        - a\r\n";
        let (out, _) = patched(text, |v| {
            v["spec"]["list"].as_array_mut().unwrap().push(json!("b"));
            v["spec"]["new"] = json!(["c"]);
        });
        assert_eq!(
            out,
            "spec:\r\n    list:\r\n        - a\r\n        - b\r\n    new:\r\n        - c\r\n"
        );
    }

    #[test]
    fn aliases_fall_back_to_reemit() {
        let text = "---\n# Source: y\na: &x {k: 1}\nb: *x\n";
        let (out, mode) = patched(text, |v| v["c"] = json!(true));
        assert_eq!(mode, PatchMode::Reemitted);
        assert_eq!(out, "---\n# Source: y\na:\n  k: 1\nb:\n  k: 1\nc: true\n");
    }
}
