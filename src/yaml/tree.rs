//! A YAML document as a tree of nodes that remember where they are in the source text.
//!
//! The tree is what lets the patcher insert new fields without re-emitting anything else; its
//! [`Node::to_value`] gives the Kubernetes (YAML 1.1) meaning as `serde_json::Value`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Value};

use super::resolve::{
    binary_error, is_inf_or_nan, key_string, plain_key, resolve_plain, resolve_tagged,
};

/// Deepest nesting accepted; deeper input is rejected instead of exhausting the stack.
const MAX_DEPTH: usize = 256;

/// A syntax or structure error, located in the document's own text (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line within the document text.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

/// What a node holds.
#[derive(Debug, Clone)]
pub enum Data<'a> {
    /// A scalar with its style and core-schema tag suffix (`str`, `int`, ...) when tagged.
    Scalar {
        text: Cow<'a, str>,
        style: ScalarStyle,
        tag: Option<String>,
    },
    /// A mapping; `flow` for `{...}`.
    Map { entries: Vec<Entry<'a>>, flow: bool },
    /// A sequence; `flow` for `[...]`.
    Seq { items: Vec<Node<'a>>, flow: bool },
    /// `*alias`, by anchor id.
    Alias(usize),
}

/// A mapping entry.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The key as Kubernetes reads it (non-string keys become their JSON text).
    pub key: String,
    /// The key's node, for its position.
    pub key_node: Node<'a>,
    /// The value.
    pub value: Node<'a>,
}

/// A node with its byte span in the document text.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    /// Byte offset where the node's content starts (first key for block mappings, first item
    /// content for block sequences).
    pub start: usize,
    /// Byte offset just past the node's last content character.
    pub end: usize,
    /// 0-based column (in characters) of `start`.
    pub col: usize,
    /// Anchor id, 0 when none.
    pub anchor: usize,
    /// The content.
    pub data: Data<'a>,
}

/// A parsed document.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    /// The root node; `None` for an empty or comment-only document.
    pub root: Option<Node<'a>>,
    /// True when the document uses aliases or merge keys, which the patcher does not edit around.
    pub uses_aliases: bool,
    /// Indentation step used by the document's block mappings (2 when unknown).
    pub indent_step: usize,
    /// True when block sequences under a key are written with the dash at the key's column.
    pub compact_sequences: bool,
    /// What the document itself showed of those two habits (`None`: nothing to learn from), for
    /// a caller that lays out a larger document from its parts.
    pub observed: (Option<usize>, Option<bool>),
}

/// Converts the parser's character offsets into byte offsets of the document text.
struct Offsets {
    table: Option<Vec<u32>>,
    len: usize,
}

impl Offsets {
    fn new(text: &str) -> Self {
        if text.is_ascii() {
            return Offsets {
                table: None,
                len: text.len(),
            };
        }
        let mut table: Vec<u32> = text.char_indices().map(|(i, _)| i as u32).collect();
        table.push(text.len() as u32);
        Offsets {
            table: Some(table),
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.len),
            Some(t) => t.get(char_index).map_or(self.len, |&b| b as usize),
        }
    }
}

/// Parses one document's text into a tree. The text must hold at most one YAML document.
pub fn parse_document(text: &str) -> Result<Document<'_>, SyntaxError> {
    let events = collect_events(text)?;
    build_document(text, &events)
}

/// A parser event with its span.
pub type SpannedEvent<'a> = (Event<'a>, Span);

/// Runs the parser over `text`, returning every event or the first syntax error.
///
/// Alias expansion is bounded here (see [`AliasBudget`]), so every document that is parsed,
/// whichever path reads it, has a meaning of bounded size.
pub fn collect_events(text: &str) -> Result<Vec<SpannedEvent<'_>>, SyntaxError> {
    check_text(text)?;
    if let Some(e) = empty_document_end(text) {
        return Err(e);
    }
    // The text the parser reads, when it differs from `text` (always in the same bytes at the
    // same offsets), and the char indices where a lone `-` was stood in for.
    let mut work: Option<String> = None;
    let mut dashes: Vec<usize> = Vec::new();
    if let Some(bom) = bom_after_marker(text) {
        // kubectl splits a stream at `---` lines and drops them, so a document may start with a
        // byte order mark that go-yaml skips; YAML 1.2 forbids one after `---`. Parse the text
        // with the mark moved before the `---` line: the same characters and bytes, every node
        // at the same offset.
        let mut swapped = String::with_capacity(text.len());
        swapped.push('\u{feff}');
        swapped.push_str(&text[..bom]);
        swapped.push_str(&text[bom + '\u{feff}'.len_utf8()..]);
        work = Some(swapped);
    }
    for _ in 0..=MAX_READER_FIXES {
        let Some(w) = &work else {
            match parse_events(text) {
                Ok(events) => return Ok(events),
                Err(e) => {
                    work = Some(reader_fix(text, &e, &mut dashes).ok_or(e)?);
                    continue;
                }
            }
        };
        match parse_events(w) {
            Ok(events) => {
                return Ok(events
                    .into_iter()
                    .map(|(e, s)| (stand_in_back(owned(e), &s, &dashes), s))
                    .collect())
            }
            Err(e) => {
                let fixed = reader_fix(w, &e, &mut dashes).ok_or(e)?;
                work = Some(fixed);
            }
        }
    }
    Err(SyntaxError {
        line: 1,
        col: 1,
        message: format!(
            "more than {MAX_READER_FIXES} tabs after `:` or lone `-` in flow collections: \
             Kubernetes' YAML reader reads them, this tool's YAML 1.2 parser only a bounded \
             number; write a space after `:` and `\"-\"`"
        ),
    })
}

/// How many places per document where go-yaml reads what this parser refuses (a tab after `:`, a
/// lone `-` in a flow collection) are read go-yaml's way; each costs a parse.
const MAX_READER_FIXES: usize = 64;

/// The text with the place `error` points at read as Kubernetes' YAML reader (go-yaml) reads
/// it, in the same bytes, or `None` when the error is no such place:
/// - a tab right after a `:` that follows a key on its line (`a:\tb`; go-yaml takes the tab as
///   a separator, YAML 1.2 needs a space) becomes a space;
/// - a `-` alone before `,`, `]` or `}` in a flow collection (`[-]`; go-yaml reads the string
///   "-", YAML 1.2 refuses) becomes a plain `x`, and its scalar's text is made `-` again
///   ([`stand_in_back`]).
fn reader_fix(text: &str, error: &SyntaxError, dashes: &mut Vec<usize>) -> Option<String> {
    let line_start = if error.line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(error.line - 2)?.0 + 1
    };
    let line = &text[line_start..];
    let (in_line, c) = line.char_indices().nth(error.col.checked_sub(1)?)?;
    let at = line_start + in_line;
    let before = &text[line_start..at];
    let after = text[at + c.len_utf8()..].chars().next();
    if error
        .message
        .contains("':' must be followed by a valid YAML whitespace")
    {
        // The parser stops at the first character after the blanks that follow the `:`.
        let blanks = before.trim_end_matches([' ', '\t']);
        let key = blanks.strip_suffix(':')?;
        if !before[blanks.len()..].starts_with('\t') || key.trim().is_empty() {
            return None;
        }
        let mut fixed = String::with_capacity(text.len());
        fixed.push_str(&text[..line_start + blanks.len()]);
        fixed.push_str(&" ".repeat(before.len() - blanks.len()));
        fixed.push_str(&text[at..]);
        return Some(fixed);
    }
    let replacement = if error.message.contains("plain scalar cannot start with '-'")
        && c == '-'
        && matches!(after, Some(',' | ']' | '}'))
    {
        let char_index = text[..at].chars().count();
        dashes.push(char_index);
        'x'
    } else {
        return None;
    };
    let mut fixed = String::with_capacity(text.len());
    fixed.push_str(&text[..at]);
    fixed.push(replacement);
    fixed.push_str(&text[at + 1..]);
    Some(fixed)
}

/// A plain scalar that stands in for a lone `-` ([`reader_fix`]) gets its text back.
fn stand_in_back(event: Event<'static>, span: &Span, dashes: &[usize]) -> Event<'static> {
    match event {
        Event::Scalar(text, ScalarStyle::Plain, anchor, tag)
            if text == "x" && dashes.contains(&(span.end.index().wrapping_sub(1))) =>
        {
            Event::Scalar(Cow::Borrowed("-"), ScalarStyle::Plain, anchor, tag)
        }
        other => other,
    }
}

/// A document whose first content is `...` (kubectl hands go-yaml the text after the `---`
/// line, and go-yaml finds no node before the end marker: "did not find expected node content").
pub fn empty_document_end(text: &str) -> Option<SyntaxError> {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start_matches('\u{feff}').trim_end();
        let content = t.trim_start();
        if content.is_empty() || content.starts_with('#') || (i == 0 && is_start_marker(t)) {
            continue;
        }
        if t == "..." || t.starts_with("... ") || t.starts_with("...\t") {
            return Some(SyntaxError {
                line: i + 1,
                col: 1,
                message: "a document with nothing before its end marker `...`: Kubernetes' YAML \
                          reader rejects it (\"did not find expected node content\"); remove the \
                          `...` line"
                    .into(),
            });
        }
        return None;
    }
    None
}

/// A `---` line with nothing after the marker but blanks or a comment.
fn is_start_marker(line: &str) -> bool {
    line.strip_prefix("---").is_some_and(|rest| {
        let rest = rest.trim();
        rest.is_empty()
            || (rest.starts_with('#')
                && line
                    .as_bytes()
                    .get(3)
                    .is_some_and(|b| *b == b' ' || *b == b'\t'))
    })
}

/// The byte offset of a byte order mark that starts the line after a leading `---` line.
fn bom_after_marker(text: &str) -> Option<usize> {
    let rest = text.strip_prefix("---")?;
    let line_end = rest.find('\n')?;
    let tail = rest[..line_end].trim();
    if !(tail.is_empty() || tail.starts_with('#')) {
        return None;
    }
    let bom = 3 + line_end + 1;
    text[bom..].starts_with('\u{feff}').then_some(bom)
}

/// An event that owns its text.
fn owned(event: Event<'_>) -> Event<'static> {
    let tag = |t: Option<Cow<'_, saphyr_parser::Tag>>| t.map(|t| Cow::Owned(t.into_owned()));
    match event {
        Event::Nothing => Event::Nothing,
        Event::StreamStart => Event::StreamStart,
        Event::StreamEnd => Event::StreamEnd,
        Event::DocumentStart(explicit) => Event::DocumentStart(explicit),
        Event::DocumentEnd => Event::DocumentEnd,
        Event::Alias(id) => Event::Alias(id),
        Event::Scalar(text, style, anchor, t) => {
            Event::Scalar(Cow::Owned(text.into_owned()), style, anchor, tag(t))
        }
        Event::SequenceStart(anchor, t) => Event::SequenceStart(anchor, tag(t)),
        Event::SequenceEnd => Event::SequenceEnd,
        Event::MappingStart(anchor, t) => Event::MappingStart(anchor, tag(t)),
        Event::MappingEnd => Event::MappingEnd,
    }
}

fn parse_events(text: &str) -> Result<Vec<SpannedEvent<'_>>, SyntaxError> {
    // The plain block style most manifests are in: the fast reader's events, which are the
    // parser's (checked in debug builds), with no `String` per scalar. It takes no text with
    // tags, anchors, aliases or a second document, so nothing below applies to it.
    if let Some(events) = super::fast::read(text) {
        #[cfg(debug_assertions)]
        super::verify::same_as_parser(text, &events);
        return Ok(events);
    }
    let mut parser = Parser::new_from_str(text);
    // About one event per 8 bytes of Kubernetes YAML: one allocation instead of a doubling series.
    // Fallible: a huge document whose events do not fit in memory is an error, never an abort.
    let out_of_memory = |span: Option<&Span>| SyntaxError {
        line: span.map_or(1, |s| s.start.line()),
        col: span.map_or(1, |s| s.start.col() + 1),
        message: format!(
            "out of memory: a document of {} bytes is too large to read",
            text.len()
        ),
    };
    let mut events: Vec<SpannedEvent<'_>> = Vec::new();
    events
        .try_reserve_exact((text.len() / 8 + 8).min(1 << 20))
        .map_err(|_| out_of_memory(None))?;
    let mut docs = 0usize;
    let mut budget = AliasBudget::default();
    let mut eof = EndOfInput::new(text);
    let mut offsets: Option<Offsets> = None;
    while let Some(item) = parser.next_event() {
        match item {
            Ok((mut event, span)) => {
                eof.fix_block_scalar(&mut event, &span);
                let tagged = match &event {
                    Event::Scalar(_, _, _, tag)
                    | Event::SequenceStart(_, tag)
                    | Event::MappingStart(_, tag) => tag.is_some(),
                    _ => false,
                };
                if tagged {
                    let offsets = offsets.get_or_insert_with(|| Offsets::new(text));
                    if let Some((at, c)) = tag_run_on(text, offsets.byte(span.start.index())) {
                        let before = &text[..at];
                        let line = before.matches('\n').count() + 1;
                        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
                            .chars()
                            .count()
                            + 1;
                        return Err(SyntaxError {
                            line,
                            col,
                            message: format!(
                                "a tag followed directly by `{c}`: Kubernetes' YAML reader \
                                 rejects it or reads `{c}` as part of the tag; put a space after \
                                 the tag"
                            ),
                        });
                    }
                }
                if let Err(message) = budget.observe(&event) {
                    return Err(SyntaxError {
                        line: span.start.line(),
                        col: span.start.col() + 1,
                        message,
                    });
                }
                if matches!(event, Event::DocumentStart(_)) {
                    docs += 1;
                    if docs > 1 {
                        return Err(SyntaxError {
                            line: span.start.line(),
                            col: span.start.col() + 1,
                            message: "more than one YAML document where one was expected".into(),
                        });
                    }
                }
                if events.len() == events.capacity() {
                    events
                        .try_reserve(events.len())
                        .map_err(|_| out_of_memory(Some(&span)))?;
                }
                events.push((event, span));
            }
            Err(e) => {
                let m = e.marker();
                return Err(SyntaxError {
                    line: m.line(),
                    col: m.col() + 1,
                    message: e.info().to_string(),
                });
            }
        }
    }
    Ok(events)
}

/// Where a node's properties (anchor, tag) starting at byte `start` have a tag followed directly
/// by a flow indicator (`[!!str]`, `{a: !x}`, `[!x, a]`): go-yaml needs a blank or a line break
/// after a tag and takes `,`, `[` and `]` into it, so it rejects or misreads what YAML 1.2 reads.
fn tag_run_on(text: &str, start: usize) -> Option<(usize, char)> {
    let bytes = text.as_bytes();
    let mut i = start;
    for _ in 0..2 {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'&') => {
                while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n') {
                    if matches!(bytes[i], b',' | b'[' | b']' | b'{' | b'}') {
                        break;
                    }
                    i += 1;
                }
            }
            Some(b'!') => {
                if bytes.get(i + 1) == Some(&b'<') {
                    i += text[i..].find('>')? + 1;
                } else {
                    while i < bytes.len()
                        && !matches!(
                            bytes[i],
                            b' ' | b'\t' | b'\r' | b'\n' | b',' | b'[' | b']' | b'{' | b'}'
                        )
                    {
                        i += 1;
                    }
                }
                return match bytes.get(i) {
                    Some(&c @ (b',' | b'[' | b']' | b'{' | b'}')) => Some((i, c as char)),
                    _ => None,
                };
            }
            _ => return None,
        }
    }
    None
}

/// True when [`check_text`] has nothing to look at: no control character but tab and line
/// breaks, no DEL, no `%` (a directive), nothing outside ASCII. Without branches per byte, so
/// the compiler can do 64 bytes at a time; most documents are like that.
fn nothing_to_check(bytes: &[u8]) -> bool {
    for chunk in bytes.chunks(64) {
        let mut odd = 0u8;
        for &b in chunk {
            odd |= u8::from(
                (b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r') | (b >= 0x7f) | (b == b'%'),
            );
        }
        if odd != 0 {
            return false;
        }
    }
    true
}

/// Rejects, before parsing, text that Kubernetes' YAML reader (go-yaml v2, YAML 1.1) reads
/// differently from this YAML 1.2 parser or not at all:
/// - control characters (go-yaml: "control characters are not allowed"), raw or in comments;
/// - a raw NEL (U+0085), LINE SEPARATOR (U+2028) or PARAGRAPH SEPARATOR (U+2029): line breaks to
///   go-yaml, ordinary characters to YAML 1.2;
/// - a `%YAML` directive for any version but 1.1 (go-yaml: "found incompatible YAML document").
fn check_text(text: &str) -> Result<(), SyntaxError> {
    let at = |offset: usize, message: String| {
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        SyntaxError { line, col, message }
    };
    let bytes = text.as_bytes();
    if nothing_to_check(bytes) {
        return Ok(());
    }
    let ascii = text.is_ascii();
    for (i, &b) in bytes.iter().enumerate() {
        if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') || b == 0x7f {
            return Err(at(
                i,
                format!(
                    "control character U+{b:04X}: Kubernetes' YAML reader rejects control \
                     characters; write it as an escape in a double-quoted string"
                ),
            ));
        }
        if b == b'%' && (i == 0 || bytes[i - 1] == b'\n') && text[i..].starts_with("%YAML") {
            let line = text[i..].lines().next().unwrap_or_default();
            let version = line["%YAML".len()..]
                .split('#')
                .next()
                .unwrap_or_default()
                .trim();
            if version != "1.1" {
                return Err(at(
                    i,
                    format!(
                        "`%YAML {version}`: Kubernetes' YAML reader reads YAML 1.1 only and \
                         rejects the document (\"found incompatible YAML document\"); drop the \
                         directive or write `%YAML 1.1`"
                    ),
                ));
            }
        }
    }
    if ascii {
        return Ok(());
    }
    for (i, c) in text.char_indices() {
        let u = c as u32;
        let problem = match u {
            0x85 | 0x2028 | 0x2029 => Some(format!(
                "raw U+{u:04X} ({}): Kubernetes' YAML reader reads it as a line break, YAML 1.2 \
                 does not; write it as `\\{}` in a double-quoted string",
                match u {
                    0x85 => "NEXT LINE",
                    0x2028 => "LINE SEPARATOR",
                    _ => "PARAGRAPH SEPARATOR",
                },
                match u {
                    0x85 => 'N',
                    0x2028 => 'L',
                    _ => 'P',
                }
            )),
            0xfeff
                if i > 0
                    && text.as_bytes()[i - 1] == b'\n'
                    && bom_after_marker(text) != Some(i) =>
            {
                Some(
                    "a byte order mark at the start of a line inside a document: Kubernetes' YAML \
                 reader rejects it"
                        .to_string(),
                )
            }
            0x80..=0x9f | 0xfffe | 0xffff => Some(format!(
                "control character U+{u:04X}: Kubernetes' YAML reader rejects control \
                 characters; write it as an escape in a double-quoted string"
            )),
            _ => None,
        };
        if let Some(message) = problem {
            return Err(at(i, message));
        }
    }
    Ok(())
}

/// Bounds alias expansion the way Kubernetes' YAML reader does.
///
/// sigs.k8s.io/yaml decodes with go-yaml v2, which since the "billion laughs" fix
/// (CVE-2019-11253, yaml.v2 2.2.8, the same rule as yaml.v3) counts every node it decodes, and
/// those decoded through an alias, and fails with "document contains excessive aliasing" once more
/// than 100 alias-decoded nodes and more than 1000 nodes in all have been decoded and the share
/// from aliases exceeds [`allowed_alias_ratio`]: 99% up to 400,000 nodes, falling linearly to 10%
/// at 4,000,000. So at most about 400,000 nodes (plus 10% of a very large document) ever come from
/// aliases. The same count here, made on the event stream before any tree or value is built: a
/// node is a scalar, a collection or an alias; an alias counts itself plus the full (expanded)
/// size of its anchor's node.
#[derive(Default)]
struct AliasBudget {
    /// Expanded size of each anchored node, by anchor id.
    sizes: HashMap<usize, u64>,
    /// Open collections: their anchor id and expanded size so far.
    open: Vec<(usize, u64)>,
    /// Nodes decoded (the document node counts, as in go-yaml).
    decoded: u64,
    /// Nodes decoded through an alias.
    aliased: u64,
}

/// go-yaml's `allowedAliasRatio`: the share of decoded nodes that may come from aliases.
fn allowed_alias_ratio(decoded: u64) -> f64 {
    const LOW: u64 = 400_000;
    const HIGH: u64 = 4_000_000;
    if decoded <= LOW {
        0.99
    } else if decoded >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decoded - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

impl AliasBudget {
    fn add(&mut self, size: u64) {
        if let Some(top) = self.open.last_mut() {
            top.1 = top.1.saturating_add(size);
        }
    }

    fn observe(&mut self, event: &Event<'_>) -> Result<(), String> {
        match event {
            Event::DocumentStart(_) => {
                self.decoded = self.decoded.saturating_add(1);
                return Ok(());
            }
            Event::Scalar(_, _, anchor, _) => {
                self.decoded = self.decoded.saturating_add(1);
                if *anchor != 0 {
                    self.sizes.insert(*anchor, 1);
                }
                self.add(1);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.decoded = self.decoded.saturating_add(1);
                self.open.push((*anchor, 1));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, size)) = self.open.pop() {
                    if anchor != 0 {
                        self.sizes.insert(anchor, size);
                    }
                    self.add(size);
                }
                return Ok(());
            }
            Event::Alias(id) => {
                let Some(&size) = self.sizes.get(id) else {
                    // The anchor is still open: its value would contain itself (go-yaml: "anchor
                    // value contains itself").
                    return Err(
                        "alias refers to the node its anchor is on: the value would contain itself"
                            .into(),
                    );
                };
                self.decoded = self.decoded.saturating_add(size).saturating_add(1);
                self.aliased = self.aliased.saturating_add(size);
                self.add(size.saturating_add(1));
            }
            _ => return Ok(()),
        }
        // go-yaml checks at every node it decodes; within one alias's expansion the share from
        // aliases only grows, so checking once after it gives the same answer.
        if self.aliased > 100
            && self.decoded > 1000
            && self.aliased as f64 / self.decoded as f64 > allowed_alias_ratio(self.decoded)
        {
            return Err(format!(
                "document contains excessive aliasing: aliases expand to {} of {} nodes \
                 (Kubernetes' YAML reader allows 99% up to 400,000 nodes, down to 10% at \
                 4,000,000)",
                self.aliased, self.decoded
            ));
        }
        Ok(())
    }
}

/// saphyr-parser reads the end of input as a line break after a block scalar's last line, so
/// `a: |\n  x` (no final newline) would read as "x\n" where YAML (and go-yaml) read "x". This
/// takes that phantom line break off again.
pub(crate) struct EndOfInput<'t> {
    text: &'t str,
    /// Length of the text in characters (the parser's unit), once needed.
    chars: Option<usize>,
}

impl<'t> EndOfInput<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        EndOfInput { text, chars: None }
    }

    /// Takes the phantom final line break off a block scalar that runs to the end of input.
    pub(crate) fn fix_block_scalar(&mut self, event: &mut Event<'_>, span: &Span) {
        let Event::Scalar(value, ScalarStyle::Literal | ScalarStyle::Folded, _, _) = event else {
            return;
        };
        if self.text.ends_with(['\n', '\r']) || !value.ends_with('\n') {
            return;
        }
        let text = self.text;
        let chars = *self.chars.get_or_insert_with(|| {
            if text.is_ascii() {
                text.len()
            } else {
                text.chars().count()
            }
        });
        if span.end.index() < chars {
            return;
        }
        match value {
            Cow::Borrowed(s) => *s = &s[..s.len() - 1],
            Cow::Owned(s) => {
                s.pop();
            }
        }
    }
}

/// Builds the tree from events produced by [`collect_events`] for `text`.
pub fn build_document<'a>(
    text: &'a str,
    events: &[SpannedEvent<'a>],
) -> Result<Document<'a>, SyntaxError> {
    let mut builder = Builder {
        text,
        offsets: Offsets::new(text),
        events,
        pos: 0,
        uses_aliases: false,
        indent_step: None,
        compact_sequences: None,
        key_next: false,
        anchored_keys: HashMap::new(),
    };
    let mut root = None;
    while builder.pos < events.len() {
        match &events[builder.pos].0 {
            Event::StreamStart
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::StreamEnd => {
                builder.pos += 1;
            }
            Event::Nothing => builder.pos += 1,
            _ => {
                let node = builder.node(0)?;
                let empty = matches!(&node.data, Data::Scalar { text, style: ScalarStyle::Plain, tag: None } if text.is_empty());
                root = if empty { None } else { Some(node) };
            }
        }
    }
    Ok(Document {
        root,
        uses_aliases: builder.uses_aliases,
        indent_step: builder.indent_step.unwrap_or(2),
        compact_sequences: builder.compact_sequences.unwrap_or(true),
        observed: (builder.indent_step, builder.compact_sequences),
    })
}

struct Builder<'a, 'e> {
    text: &'a str,
    offsets: Offsets,
    events: &'e [SpannedEvent<'a>],
    pos: usize,
    uses_aliases: bool,
    indent_step: Option<usize>,
    compact_sequences: Option<bool>,
    /// The next node is a mapping key.
    key_next: bool,
    /// What each anchored scalar means as a mapping key, for aliases used as keys.
    anchored_keys: HashMap<usize, Result<String, String>>,
}

/// A scalar node as a JSON object key the way sigs.k8s.io/yaml makes it, or why it cannot be one.
fn scalar_key(node: &Node<'_>) -> Result<String, String> {
    match &node.data {
        Data::Scalar { text, style, tag } => {
            key_of(text, *style, tag.as_deref()).map(Cow::into_owned)
        }
        _ => Err("not a scalar".into()),
    }
}

/// A scalar (its text, style and resolved tag name) as a JSON object key the way
/// sigs.k8s.io/yaml makes it, or why it cannot be one. Borrows the text when it is the key.
pub(crate) fn key_of<'t>(
    text: &'t str,
    style: ScalarStyle,
    tag: Option<&str>,
) -> Result<Cow<'t, str>, String> {
    match (style, tag) {
        (ScalarStyle::Plain, None) => {
            // Most keys are words longer than any YAML 1.1 null, boolean, infinity or NaN
            // (`false` is the longest, at five) and start with a letter: the key is the text.
            if text.len() > 5 && text.as_bytes()[0].is_ascii_alphabetic() {
                Ok(Cow::Borrowed(text))
            } else {
                plain_key(text).map(Cow::Owned)
            }
        }
        (_, None) => Ok(Cow::Borrowed(text)),
        (_, Some(tag)) => match resolve_tagged(text, tag) {
            Value::Null => Err(
                "null key: Kubernetes' YAML reader cannot read a mapping key that is null".into(),
            ),
            v => Ok(Cow::Owned(key_string(&v))),
        },
    }
}

/// Checks every mapping of a document's events for what Kubernetes' reader refuses in keys
/// without building a tree (for documents the tool passes through unread): a key set twice
/// (kubectl's strict decoding), a null key, an integer key above 2^63-1, a mapping or sequence as
/// a key. The same rules as [`build_document`], which applies them to the documents it reads:
/// merge keys (`<<`) may repeat, and an alias as a key means its anchored scalar.
pub fn check_keys(events: &[SpannedEvent<'_>]) -> Result<(), SyntaxError> {
    let error = |span: &Span, message: String| SyntaxError {
        line: span.start.line(),
        col: span.start.col() + 1,
        message,
    };
    let mut stack: Vec<KeyFrame<'_>> = Vec::new();
    let mut anchored: HashMap<usize, Result<Cow<'_, str>, String>> = HashMap::new();
    for (event, span) in events {
        let is_key = matches!(stack.last(), Some(KeyFrame::Map { key_next: true, .. }));
        let key: Cow<'_, str> = match event {
            Event::Scalar(text, style, anchor, tag) => {
                if !is_key && *anchor == 0 {
                    end_node(&mut stack);
                    continue;
                }
                let tag = tag.as_deref().map(tag_name);
                let key = key_of(text, *style, tag.as_deref());
                if *anchor != 0 {
                    anchored.insert(*anchor, key.clone());
                }
                // A plain `<<` is a merge key, which may repeat.
                if !is_key || *style == ScalarStyle::Plain && text == "<<" {
                    end_node(&mut stack);
                    continue;
                }
                key.map_err(|m| error(span, m))?
            }
            Event::Alias(id) if is_key => match anchored.get(id) {
                Some(Ok(k)) => k.clone(),
                Some(Err(m)) => return Err(error(span, m.clone())),
                None => {
                    return Err(error(
                        span,
                        "an alias of a mapping or sequence used as a mapping key".into(),
                    ))
                }
            },
            Event::Alias(_) => {
                end_node(&mut stack);
                continue;
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if is_key {
                    return Err(error(span, "mapping or sequence used as a key".into()));
                }
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    KeyFrame::Map {
                        small: Vec::new(),
                        large: None,
                        key_next: true,
                    }
                } else {
                    KeyFrame::Seq
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                end_node(&mut stack);
                continue;
            }
            _ => continue,
        };
        if let Some(KeyFrame::Map { small, large, .. }) = stack.last_mut() {
            let repeated = match large {
                Some(set) => !set.insert(key.clone()),
                None if small.contains(&key) => true,
                None => {
                    small.push(key.clone());
                    if small.len() > KeyFrame::SMALL {
                        *large = Some(std::mem::take(small).into_iter().collect());
                    }
                    false
                }
            };
            if repeated {
                // kubectl's strict decoding rejects a key set twice.
                return Err(error(
                    span,
                    format!(
                        "duplicate key {}: it is already set in this mapping",
                        Value::String(key.into_owned())
                    ),
                ));
            }
        }
        end_node(&mut stack);
    }
    Ok(())
}

/// An open collection while [`check_keys`] walks the events.
enum KeyFrame<'k> {
    Seq,
    Map {
        /// The keys so far, while there are few of them (searched in order)...
        small: Vec<Cow<'k, str>>,
        /// ...or all of them in a set once there are more than [`KeyFrame::SMALL`].
        large: Option<HashSet<Cow<'k, str>>>,
        /// The next node is a key.
        key_next: bool,
    },
}

impl KeyFrame<'_> {
    const SMALL: usize = 16;
}

/// A node of the innermost collection is complete: in a mapping, keys and values alternate.
fn end_node(stack: &mut [KeyFrame<'_>]) {
    if let Some(KeyFrame::Map { key_next, .. }) = stack.last_mut() {
        *key_next = !*key_next;
    }
}

impl<'a> Builder<'a, '_> {
    fn error(&self, span: &Span, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: span.start.line(),
            col: span.start.col() + 1,
            message: message.into(),
        }
    }

    fn node(&mut self, depth: usize) -> Result<Node<'a>, SyntaxError> {
        let Some((event, span)) = self.events.get(self.pos) else {
            return Err(SyntaxError {
                line: 1,
                col: 1,
                message: "unexpected end of document".into(),
            });
        };
        let span = *span;
        if depth > MAX_DEPTH {
            return Err(self.error(&span, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.pos += 1;
        let is_key = std::mem::take(&mut self.key_next);
        let start = self.offsets.byte(span.start.index());
        let col = span.start.col();
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.as_deref().map(tag_name);
                if let Some(message) =
                    self.scalar_problem(text, *style, tag.as_deref(), is_key, start)
                {
                    return Err(self.error(&span, message));
                }
                let mut end = self.offsets.byte(span.end.index());
                match style {
                    ScalarStyle::Literal | ScalarStyle::Folded => {
                        end = block_scalar_end(self.text, start, end, col);
                    }
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                        end = quoted_scalar_end(self.text, start, end, *style);
                    }
                    _ => {}
                }
                let node = Node {
                    start,
                    end,
                    col,
                    anchor: *anchor,
                    data: Data::Scalar {
                        text: text.clone(),
                        style: *style,
                        tag,
                    },
                };
                if *anchor != 0 {
                    self.anchored_keys.insert(*anchor, scalar_key(&node));
                }
                Ok(node)
            }
            Event::Alias(id) => {
                self.uses_aliases = true;
                Ok(Node {
                    start,
                    end: self.offsets.byte(span.end.index()),
                    col,
                    anchor: 0,
                    data: Data::Alias(*id),
                })
            }
            Event::SequenceStart(anchor, _) => {
                let (start, col, flow) = self.collection_start(&span, b'[');
                let mut items = Vec::new();
                let mut end = start;
                loop {
                    match self.events.get(self.pos) {
                        Some((Event::SequenceEnd, sp)) => {
                            if flow {
                                end = self.offsets.byte(sp.end.index());
                            }
                            self.pos += 1;
                            break;
                        }
                        Some((_, item_span)) => {
                            let item_span = *item_span;
                            let item = self.node(depth + 1)?;
                            if !flow {
                                end = item.end;
                                if tab_after_dash(self.text, item.start) {
                                    return Err(self.error(
                                        &item_span,
                                        "a tab after `-`: Kubernetes' YAML reader rejects it \
                                         (\"found character that cannot start any token\"); use \
                                         spaces",
                                    ));
                                }
                            }
                            items.push(item);
                        }
                        None => return Err(self.error(&span, "unterminated sequence")),
                    }
                }
                if !flow && items.is_empty() {
                    end = start;
                }
                Ok(Node {
                    start,
                    end,
                    col,
                    anchor: *anchor,
                    data: Data::Seq { items, flow },
                })
            }
            Event::MappingStart(anchor, _) => {
                let (start, col, flow) = self.collection_start(&span, b'{');
                let mut entries: Vec<Entry<'a>> = Vec::new();
                // Keys set so far (merge keys aside), looked up in `entries` while the mapping is
                // small and in a set once it grows (100k annotations stay linear).
                let mut keys: Option<HashSet<String>> = None;
                let mut merges = 0usize;
                let mut end = start;
                loop {
                    match self.events.get(self.pos) {
                        Some((Event::MappingEnd, sp)) => {
                            if flow {
                                end = self.offsets.byte(sp.end.index());
                            }
                            self.pos += 1;
                            break;
                        }
                        Some((_, key_span)) => {
                            let key_span = *key_span;
                            self.key_next = true;
                            let key_node = self.node(depth + 1)?;
                            let key = match &key_node.data {
                                Data::Scalar { .. } => {
                                    scalar_key(&key_node).map_err(|m| self.error(&key_span, m))?
                                }
                                Data::Alias(id) => match self.anchored_keys.get(id) {
                                    Some(Ok(key)) => key.clone(),
                                    Some(Err(m)) => return Err(self.error(&key_span, m.clone())),
                                    None => {
                                        return Err(self.error(
                                            &key_span,
                                            "an alias of a mapping or sequence used as a \
                                             mapping key",
                                        ))
                                    }
                                },
                                _ => {
                                    return Err(
                                        self.error(&key_span, "mapping or sequence used as a key")
                                    )
                                }
                            };
                            if self.events.get(self.pos).is_none() {
                                return Err(self.error(&key_span, "mapping key without a value"));
                            }
                            let mut value = self.node(depth + 1)?;
                            if is_empty_plain(&value) {
                                let at = after_colon(self.text, key_node.end);
                                value.start = at;
                                value.end = at;
                            }
                            self.observe_layout(col, flow, &value);
                            if !flow {
                                end = value.end.max(key_node.end);
                            }
                            let is_merge = key == "<<"
                                && matches!(
                                    &key_node.data,
                                    Data::Scalar {
                                        style: ScalarStyle::Plain,
                                        ..
                                    }
                                );
                            if is_merge {
                                self.uses_aliases = true;
                                if matches!(value.data, Data::Scalar { .. })
                                    && !is_empty_plain(&value)
                                {
                                    return Err(self.error(
                                        &key_span,
                                        "merge key `<<` with a scalar value: Kubernetes' YAML \
                                         reader rejects it (a merge needs a mapping or a list of \
                                         mappings)",
                                    ));
                                }
                            } else if !Self::first_time(&mut keys, &entries, merges, &key) {
                                // kubectl's strict decoding rejects a key set twice; reading it
                                // last-wins would drop the first value without a word.
                                return Err(self.error(
                                    &key_span,
                                    format!(
                                        "duplicate key {}: it is already set in this mapping",
                                        serde_json::Value::String(key.clone())
                                    ),
                                ));
                            }
                            merges += usize::from(is_merge);
                            entries.push(Entry {
                                key,
                                key_node,
                                value,
                            });
                        }
                        None => return Err(self.error(&span, "unterminated mapping")),
                    }
                }
                Ok(Node {
                    start,
                    end,
                    col,
                    anchor: *anchor,
                    data: Data::Map { entries, flow },
                })
            }
            _ => Err(self.error(&span, "unexpected YAML event")),
        }
    }

    /// True when `key` is not yet among a mapping's keys (`entries`, of which `merges` are merge
    /// keys, which may repeat and are not keys of the mapping).
    fn first_time(
        keys: &mut Option<HashSet<String>>,
        entries: &[Entry<'a>],
        merges: usize,
        key: &str,
    ) -> bool {
        const SMALL: usize = 16;
        let is_merge = |e: &Entry<'_>| {
            merges > 0
                && e.key == "<<"
                && matches!(
                    &e.key_node.data,
                    Data::Scalar {
                        style: ScalarStyle::Plain,
                        ..
                    }
                )
        };
        if keys.is_none() {
            if entries.len() < SMALL {
                return !entries.iter().any(|e| e.key == key && !is_merge(e));
            }
            *keys = Some(
                entries
                    .iter()
                    .filter(|e| !is_merge(e))
                    .map(|e| e.key.clone())
                    .collect(),
            );
        }
        keys.as_mut().expect("built above").insert(key.to_string())
    }

    /// Why Kubernetes' YAML reader would reject a scalar this parser accepts, if it would.
    fn scalar_problem(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&str>,
        is_key: bool,
        start: usize,
    ) -> Option<String> {
        if tag == Some("binary") {
            return binary_error(text).map(String::from);
        }
        if !is_key
            && matches!(
                (style, tag),
                (ScalarStyle::Plain, None | Some("float")) | (_, Some("float"))
            )
            && is_inf_or_nan(text)
        {
            return Some(format!(
                "`{text}`: JSON has no infinity or NaN, so Kubernetes' YAML reader rejects the \
                 document; quote it if a string is meant"
            ));
        }
        if style == ScalarStyle::DoubleQuoted {
            // YAML 1.2's `\/` escape is unknown to YAML 1.1 (go-yaml: "found unknown escape
            // character").
            let source = self.text.as_bytes();
            let mut i = start;
            while i + 1 < source.len() && source[i] != b'"' {
                i += 1;
            }
            i += 1;
            while i + 1 < source.len() && source[i] != b'"' {
                if source[i] == b'\\' {
                    if source[i + 1] == b'/' {
                        return Some(
                            "`\\/` in a double-quoted string: Kubernetes' YAML reader (YAML 1.1) \
                             rejects this escape; write `/`"
                                .into(),
                        );
                    }
                    i += 1;
                }
                i += 1;
            }
        }
        None
    }

    /// Where a collection's content starts: the parser's span covers any anchor or tag and ends
    /// just past `{`/`[` for flow collections, at the first key or item for block ones.
    fn collection_start(&self, span: &Span, open: u8) -> (usize, usize, bool) {
        let s = self.offsets.byte(span.start.index());
        let e = self.offsets.byte(span.end.index());
        if e > s && self.text.as_bytes().get(e - 1) == Some(&open) {
            (e - 1, span.end.col().saturating_sub(1), true)
        } else {
            (e, span.end.col(), false)
        }
    }

    /// Learns the document's indentation habits from the first nested block collections.
    fn observe_layout(&mut self, parent_col: usize, parent_flow: bool, value: &Node<'a>) {
        if parent_flow {
            return;
        }
        match &value.data {
            Data::Map { flow: false, .. }
                if self.indent_step.is_none() && value.col > parent_col =>
            {
                self.indent_step = Some(value.col - parent_col);
            }
            Data::Seq { flow: false, items }
                if self.compact_sequences.is_none() && !items.is_empty() =>
            {
                let dash = dash_column(self.text, value.start);
                self.compact_sequences = Some(dash == Some(parent_col));
            }
            _ => {}
        }
    }
}

fn is_empty_plain(node: &Node<'_>) -> bool {
    matches!(&node.data, Data::Scalar { text, style: ScalarStyle::Plain, tag: None } if text.is_empty())
}

/// A scalar's tag as resolution expects it: the core schema's `int`, `str`, … without their
/// prefix, any other tag spelled out in full.
pub fn tag_name(tag: &saphyr_parser::Tag) -> String {
    if tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!" {
        tag.suffix.clone()
    } else {
        let full = format!("{}{}", tag.handle, tag.suffix);
        // A verbatim `!<tag:yaml.org,2002:str>` is the core tag too.
        match full.strip_prefix("tag:yaml.org,2002:") {
            Some(core) => core.to_string(),
            None => full,
        }
    }
}

/// The byte offset just after the `:` that follows a key ending at `key_end`.
pub fn after_colon(text: &str, key_end: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = key_end;
    while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'"' | b'\'') {
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b':' {
        i + 1
    } else {
        key_end
    }
}

/// True when a tab separates a block sequence's `-` from its item on the same line.
fn tab_after_dash(text: &str, item_start: usize) -> bool {
    let item_start = item_start.min(text.len());
    let line_start = text[..item_start].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..item_start];
    before
        .rfind('-')
        .is_some_and(|dash| before[dash + 1..].contains('\t'))
}

/// Column of the `-` that introduces the block sequence item starting at `item_start`.
pub fn dash_column(text: &str, item_start: usize) -> Option<usize> {
    let line_start = text[..item_start].rfind('\n').map_or(0, |i| i + 1);
    // An indented sequence (`key:` then `  - item`) starts at its first dash; an indentless one
    // after it.
    let at_dash = text[item_start..].strip_prefix('-');
    if at_dash.is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n'])) {
        return Some(text[line_start..item_start].chars().count());
    }
    let before = &text[line_start..item_start];
    let dash = before.rfind('-')?;
    Some(before[..dash].chars().count())
}

/// The end of a quoted scalar: just after its closing quote. The parser's span may run on past
/// trailing spaces, a comment and the line break, which an in-place edit must keep.
fn quoted_scalar_end(text: &str, start: usize, span_end: usize, style: ScalarStyle) -> usize {
    let quote = if matches!(style, ScalarStyle::DoubleQuoted) {
        b'"'
    } else {
        b'\''
    };
    let bytes = text.as_bytes();
    let limit = span_end.min(bytes.len());
    // Skip an anchor or tag written before the opening quote.
    let Some(open) = bytes[start.min(limit)..limit]
        .iter()
        .position(|&b| b == quote)
    else {
        return span_end;
    };
    let mut i = start + open + 1;
    while i < limit {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b if b == quote => {
                if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    span_end
}

/// The end of a block scalar's content: the parser's span runs on to the next token, so walk back
/// over trailing blank lines and over comments indented less than the content.
fn block_scalar_end(text: &str, start: usize, span_end: usize, content_col: usize) -> usize {
    let span_end = span_end.min(text.len());
    // The line holding the next token is not ours: start from the beginning of that line.
    let mut end = if span_end == text.len() {
        span_end
    } else {
        text[..span_end].rfind('\n').map_or(0, |i| i + 1)
    };
    while end > start {
        // Bytes, not `text[..end - 1]`: at the end of the input `end - 1` can fall inside the
        // last character (a non-ASCII one), and `\n` is one byte anyway.
        let line_start = text.as_bytes()[..end - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = text[line_start..end].trim_end_matches(['\n', '\r']);
        let indent = line.len() - line.trim_start_matches(' ').len();
        let trimmed = line.trim();
        let skippable = trimmed.is_empty() || (trimmed.starts_with('#') && indent < content_col);
        if !skippable || line_start <= start {
            return (line_start + line.len()).max(start);
        }
        end = line_start;
    }
    start
}

/// The value of a scalar node, resolved the Kubernetes way.
pub fn scalar_value(node: &Node<'_>) -> Value {
    match &node.data {
        Data::Scalar { text, style, tag } => match (tag.as_deref(), style) {
            (Some(t), _) => resolve_tagged(text, t),
            (None, ScalarStyle::Plain) => resolve_plain(text),
            (None, _) => Value::String(text.to_string()),
        },
        _ => Value::Null,
    }
}

impl Node<'_> {
    /// The node's meaning as JSON, with aliases expanded and merge keys applied.
    pub fn to_value(&self) -> Value {
        let mut anchors = HashMap::new();
        self.value_with(&mut anchors)
    }

    fn value_with(&self, anchors: &mut HashMap<usize, Value>) -> Value {
        let value = match &self.data {
            Data::Scalar { .. } => scalar_value(self),
            Data::Alias(id) => anchors.get(id).cloned().unwrap_or(Value::Null),
            Data::Seq { items, .. } => {
                Value::Array(items.iter().map(|n| n.value_with(anchors)).collect())
            }
            Data::Map { entries, .. } => {
                let mut map = Map::with_capacity(entries.len());
                let mut merged: Vec<Value> = Vec::new();
                for entry in entries {
                    let v = entry.value.value_with(anchors);
                    let is_merge = entry.key == "<<"
                        && matches!(
                            &entry.key_node.data,
                            Data::Scalar {
                                style: ScalarStyle::Plain,
                                ..
                            }
                        );
                    if is_merge {
                        match v {
                            Value::Array(list) => merged.extend(list),
                            other => merged.push(other),
                        }
                    } else {
                        map.insert(entry.key.clone(), v);
                    }
                }
                // YAML merge: explicit keys win, earlier merged mappings win over later ones.
                for source in merged {
                    if let Value::Object(src) = source {
                        for (k, v) in src {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
                Value::Object(map)
            }
        };
        if self.anchor != 0 {
            anchors.insert(self.anchor, value.clone());
        }
        value
    }

    /// The entry for `key` in a mapping node (the last one; a built tree has no duplicate keys).
    pub fn get(&self, key: &str) -> Option<&Node<'_>> {
        match &self.data {
            Data::Map { entries, .. } => entries
                .iter()
                .rev()
                .find(|e| e.key == key)
                .map(|e| &e.value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_and_spans() {
        let text = "# head\napiVersion: v1\nkind: Pod\nmetadata:\n  name: é\n  labels: {a: \"1\", b: on}\n  x: |\n    l1\n\n  # c\n  e:\n  mode: 0644\n  list:\n  - a\n  - b\n";
        let doc = parse_document(text).unwrap();
        let root = doc.root.as_ref().unwrap();
        let v = root.to_value();
        assert_eq!(
            v,
            json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"é","labels":{"a":"1","b":true},"x":"l1\n","e":null,"mode":420,"list":["a","b"]}})
        );
        let meta = root.get("metadata").unwrap();
        let x = meta.get("x").unwrap();
        assert_eq!(&text[x.start..x.end], "    l1".trim_start());
        let e = meta.get("e").unwrap();
        assert_eq!(&text[..e.start].lines().last().unwrap().trim(), &"e:");
        assert!(doc.compact_sequences);
        assert_eq!(doc.indent_step, 2);
    }

    #[test]
    fn merge_keys_and_aliases() {
        let doc = parse_document("a: &x {k: 1}\nb:\n  <<: *x\n  j: 2\n").unwrap();
        assert!(doc.uses_aliases);
        assert_eq!(
            doc.root.unwrap().to_value(),
            json!({"a":{"k":1},"b":{"k":1,"j":2}})
        );
    }

    #[test]
    fn errors_have_lines() {
        let err = parse_document("a: b\nc: [d\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
    }

    /// `l0: &l0 ["lol"]`, `lN: &lN [*l(N-1) ×10]`: 10^levels nodes from a few hundred bytes.
    fn laughs(levels: usize) -> String {
        let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nl0: &l0 [\"lol\"]\n");
        for n in 1..=levels {
            let items = vec![format!("*l{}", n - 1); 10].join(", ");
            text.push_str(&format!("l{n}: &l{n} [{items}]\n"));
        }
        text
    }

    #[test]
    fn alias_expansion_is_bounded() {
        // As in go-yaml, four levels (24,740 nodes from aliases, 99.6%) are too many.
        for levels in [4, 5, 7, 9] {
            let text = laughs(levels);
            let err = parse_document(&text).unwrap_err();
            assert!(err.message.contains("excessive aliasing"), "{err:?}");
            // The line of the alias that crossed the limit.
            assert_eq!(err.line, 7, "{err:?}");
        }
        // Three levels (2,430 nodes from aliases, 97%) still read.
        let text = laughs(3);
        let doc = parse_document(&text).unwrap();
        let v = doc.root.unwrap().to_value();
        assert_eq!(v["l3"][9][9][9], json!(["lol"]));
        // A document that is mostly its own text may alias a lot of it.
        let mut text = String::from("base: &b {");
        text.push_str(
            &(0..2000)
                .map(|i| format!("k{i}: {i}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        text.push_str("}\n");
        for i in 0..50 {
            text.push_str(&format!("c{i}: *b\n"));
        }
        assert!(parse_document(&text).is_ok());
    }

    #[test]
    fn an_alias_inside_its_own_anchor_is_an_error() {
        let err = parse_document("a: &a [*a]\n").unwrap_err();
        assert!(err.message.contains("contain itself"), "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse_document("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\n")
            .unwrap_err();
        assert_eq!((err.line, err.col), (5, 3));
        assert!(err.message.contains("duplicate key \"name\""), "{err:?}");
        // Keys that read as the same string are the same key.
        assert!(parse_document("{1: a, \"1\": b}").is_err());
        // Merge keys may repeat; the same key in different mappings is fine.
        assert!(parse_document("a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: *a\n  <<: *b\n").is_ok());
        assert!(parse_document("a: {x: 1}\nb: {x: 1}\n").is_ok());
    }

    /// `check_keys` (documents passed through unread) refuses exactly the keys the tree refuses,
    /// with the same message at the same place.
    #[test]
    fn check_keys_agrees_with_the_tree() {
        let mut large = String::from("data:\n");
        for i in 0..40 {
            large.push_str(&format!("  k{i}: v\n"));
        }
        let large_dup = format!("{large}  k3: again\n");
        let cases: Vec<(&str, bool)> = vec![
            ("data:\n  a: \"1\"\n  b: \"2\"\n  a: \"3\"\n", false),
            ("data:\n  true: 1\n  on: 2\n", false),
            ("{1: a, \"1\": b}", false),
            ("a: {x: 1, y: {x: 2, x: 3}}\n", false),
            ("- {a: 1}\n- {a: 1}\n- a: 1\n  b: 2\n  a: 3\n", false),
            (
                "a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: *a\n  <<: *b\n  x: 3\n",
                true,
            ),
            ("k: &k key\nm:\n  *k : 1\n  key: 2\n", false),
            ("k: &k key\nm:\n  *k : 1\n  other: 2\n", true),
            ("k: &k ~\nm: {a: 1}\n", true),
            ("k: &k ~\nm: {*k : 1}\n", false),
            ("m: &m {a: 1}\nn: {*m : 1}\n", false),
            ("~: 1\n", false),
            ("? [a]\n: 1\n", false),
            ("9223372036854775808: 1\n", false),
            ("\"a\": 1\n'a': 2\n", false),
            ("!!str 1: 1\n1: 2\n", false),
            ("a: 1\nb:\n  a: 1\nc: [a, a]\n", true),
            (
                "deployment.kubernetes.io/revision: 1\nlong-key-name: 2\nlong-key-name: 3\n",
                false,
            ),
            (&large, true),
            (&large_dup, false),
        ];
        for (text, ok) in cases {
            let events = collect_events(text).unwrap();
            let checked = check_keys(&events);
            let built = build_document(text, &events).map(|_| ());
            assert_eq!(checked.is_ok(), ok, "{text:?}: {checked:?}");
            assert_eq!(checked, built, "{text:?}");
        }
        let events = collect_events(&large_dup).unwrap();
        let err = check_keys(&events).unwrap_err();
        assert_eq!((err.line, err.col), (42, 3));
        assert!(err.message.contains("duplicate key \"k3\""), "{err:?}");
    }

    /// Issue 13, item 13: what go-yaml reads and YAML 1.2 refuses is read go-yaml's way; what
    /// go-yaml refuses or misreads is refused with a message naming Kubernetes' reader.
    #[test]
    fn reader_differences_agree_with_kubernetes_or_fail_clearly() {
        for (text, want) in [
            ("a:\tb\n", json!({"a": "b"})),
            ("a:\t\tb\n", json!({"a": "b"})),
            ("a: b\nc:\td\n", json!({"a": "b", "c": "d"})),
            ("a:\n  b:\tc\n", json!({"a": {"b": "c"}})),
            ("{a:\tb}\n", json!({"a": "b"})),
            ("a:\tb\tc\n", json!({"a": "b\tc"})),
            ("a: \"x:\tb\"\n", json!({"a": "x:\tb"})),
            ("f: [-]\n", json!({"f": ["-"]})),
            ("f: [-,a]\n", json!({"f": ["-", "a"]})),
            ("f: [a, -]\n", json!({"f": ["a", "-"]})),
            ("f: {a: -}\n", json!({"f": {"a": "-"}})),
            ("f: [&x -, *x]\n", json!({"f": ["-", "-"]})),
            ("f: [x, -1]\n", json!({"f": ["x", -1]})),
            ("f: [!x , a]\n", json!({"f": ["", "a"]})),
            ("a: 1\n...\n", json!({"a": 1})),
        ] {
            let v = parse_document(text).unwrap().root.unwrap().to_value();
            assert_eq!(v, want, "{text:?}");
        }
        for (text, message) in [
            ("? a\n:\tb\n", "':' must be followed"),
            ("f: [- ]\n", "only valid inside a block"),
            ("f: [!!str]\n", "a tag followed directly by `]`"),
            ("f: [!x, a]\n", "a tag followed directly by `,`"),
            ("f: {a: !x}\n", "a tag followed directly by `}`"),
            ("...\n", "nothing before its end marker"),
            ("---\n# c\n...\n", "nothing before its end marker"),
        ] {
            let err = parse_document(text).unwrap_err();
            assert!(err.message.contains(message), "{text:?}: {err:?}");
        }
        // Each fix costs a parse: a bounded number per document.
        let many: String = (0..80).map(|i| format!("k{i}:\tv\n")).collect();
        let err = parse_document(&many).unwrap_err();
        assert!(err.message.contains("more than 64"), "{err:?}");
    }

    #[test]
    fn block_scalar_at_end_of_input_keeps_its_value() {
        for (text, want) in [
            ("a: |\n  hello", "hello"),
            ("a: |+\n  hello", "hello"),
            ("a: |-\n  hello", "hello"),
            ("a: >\n  hello\n  world", "hello world"),
            ("a: |\n  hello\n  ", "hello\n"),
            ("a: |\r\n  hello", "hello"),
            ("a: |\n  héllo", "héllo"),
            // Found by the `stream` fuzz target (fuzz/regressions/block-scalar-ends-in-utf8.yaml):
            // a last character of two or more bytes made the walk back slice inside it.
            ("a: |\n  hellЕ", "hellЕ"),
            ("a: >\n  x\n  😀", "x 😀"),
            // With a final line break nothing changes.
            ("a: |\n  hello\n", "hello\n"),
            ("a: |+\n  hello\n\n", "hello\n\n"),
            ("a: |\n  hello\n# c", "hello\n"),
        ] {
            let v = parse_document(text).unwrap().root.unwrap().to_value();
            assert_eq!(v, json!({ "a": want }), "{text:?}");
        }
    }

    fn read(text: &str) -> Result<Value, SyntaxError> {
        parse_document(text).map(|d| d.root.map_or(Value::Null, |r| r.to_value()))
    }

    /// Item 4 of issue 13: tags mean what they mean to sigs.k8s.io/yaml (go-yaml v2).
    #[test]
    fn tags_read_as_kubernetes_reads_them() {
        for (text, want) in [
            ("a: !!binary aGVsbG8=\n", json!({"a": "hello"})),
            ("a: !!binary |\n  aGVs\n  bG8=\n", json!({"a": "hello"})),
            ("a: !foo 123\n", json!({"a": "123"})),
            ("a: !foo on\n", json!({"a": "on"})),
            ("name: !x\n", json!({"name": ""})),
            ("a: ! 12\n", json!({"a": "12"})),
            ("a: !<tag:yaml.org,2002:str> 12\n", json!({"a": "12"})),
            ("a: !!int 12\n", json!({"a": 12})),
            ("!foo on: x\n", json!({"on": "x"})),
        ] {
            assert_eq!(read(text).unwrap(), want, "{text:?}");
        }
        let err = read("a: !!binary aGVsbG8\n").unwrap_err();
        assert!(err.message.contains("invalid base64"), "{err:?}");
    }

    /// Item 13 of issue 13: what Kubernetes' reader rejects is rejected, with a reason.
    #[test]
    fn what_kubernetes_rejects_is_rejected() {
        for (text, needle, line) in [
            ("a: \u{1}b\n", "control character U+0001", 1),
            ("a: b\n# \u{7f}\n", "control character U+007F", 2),
            ("a: \"\u{80}\"\n", "control character U+0080", 1),
            ("a: 1\n\u{feff}\n", "byte order mark", 2),
            ("a: b\u{85}c: d\n", "U+0085 (NEXT LINE)", 1),
            ("a: \"x\u{2028}y\"\n", "U+2028 (LINE SEPARATOR)", 1),
            ("a: x\u{2029}\n", "U+2029", 1),
            ("- \tx\n", "tab after `-`", 1),
            ("a:\n-\tx\n", "tab after `-`", 2),
            ("~: a\n", "null key", 1),
            ("a:\n  null: x\n", "null key", 2),
            ("? \n: a\n", "null key", 2),
            ("!!null '': a\n", "null key", 1),
            ("9223372036854775808: a\n", "above 2^63-1", 1),
            ("%YAML 1.2\n---\na: 1\n", "%YAML 1.2", 1),
            ("a: .inf\n", "infinity or NaN", 1),
            ("a: [-.Inf]\n", "infinity or NaN", 1),
            ("a: !!float .nan\n", "infinity or NaN", 1),
            ("a: \"x\\/y\"\n", "`\\/`", 1),
            ("a:\n  <<: x\n", "merge key", 2),
        ] {
            let err = read(text).expect_err(text);
            assert!(err.message.contains(needle), "{text:?}: {err:?}");
            assert_eq!(err.line, line, "{text:?}: {err:?}");
        }
        // What Kubernetes reads stays readable.
        for (text, want) in [
            ("%YAML 1.1\n---\na: 1\n", json!({"a": 1})),
            (
                "a: \"\\N\\L\\P\\x80\"\n",
                json!({"a": "\u{85}\u{2028}\u{2029}\u{80}"}),
            ),
            (
                "a: '.inf'\nb: \".nan\"\n",
                json!({"a": ".inf", "b": ".nan"}),
            ),
            (
                "k:\n  .Inf: 1\n  -.inf: 2\n  .NaN: 3\n",
                json!({"k": {".inf": 1, "-.inf": 2, ".nan": 3}}),
            ),
            (
                "1.5: a\n1e16: b\n1000: c\n0.00001: d\n",
                json!({"1.5": "a", "1e+16": "b", "1000": "c", "1e-05": "d"}),
            ),
            (
                "a: 9.5e15\nb: 1.0\n",
                json!({"a": 9_500_000_000_000_000u64, "b": 1}),
            ),
            ("a: &x k\n*x : v\n", json!({"a": "k", "k": "v"})),
            (
                "a: &k kind\n*k : Pod\n",
                json!({"a": "kind", "kind": "Pod"}),
            ),
            ("a: |\n  -\tx\n", json!({"a": "-\tx\n"})),
            ("---\n\u{feff}a: 1\n", json!({"a": 1})),
            ("--- # c\r\n\u{feff}a: [x]\n", json!({"a": ["x"]})),
        ] {
            assert_eq!(read(text).unwrap(), want, "{text:?}");
        }
        // An alias of a collection is no key.
        assert!(read("a: &x [1]\n*x : v\n").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(5000) + &"]".repeat(5000);
        assert!(parse_document(&text).is_err());
    }
}
