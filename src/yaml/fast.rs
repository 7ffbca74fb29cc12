//! A reader for the plain block style most Kubernetes manifests are written in, giving the same
//! events and spans as `saphyr-parser` in a fraction of its time: scalars are slices of the text,
//! not a `String` each. [`super::tree::collect_events`] reads every document with it first and
//! [`super::verify`] every edited document.
//!
//! It accepts only a narrow subset and declines (`None`) everything else, which the caller then
//! hands to `saphyr-parser`: ASCII text without tabs, carriage returns or control characters,
//! ending in a line break; at most one `---` line before a root block mapping (at any column);
//! block mappings and sequences (compact or indented, `- key: value` items); plain, single- and
//! double-quoted (no escape but `\"` and `\\`) scalars on one line; `[...]` flow sequences of
//! such scalars on one line, `[]` and `{}`; literal block scalars `|` and `|-` without blank lines holding spaces;
//! comments. Anything with a second meaning (anchors, aliases, tags, `?` keys, multi-line plain
//! or quoted scalars, folded scalars, indentation indicators, a more indented comment right after
//! a value, directives, `...`) is declined. In debug builds every accepted text is also read by `saphyr-parser` and the two
//! event lists (spans included) must be equal, so every test that reads a document checks this
//! reader; a unit test does the same over the pinned corpus and the golden cases.

use std::borrow::Cow;

use saphyr_parser::{Event, Marker, ScalarStyle, Span};

/// Declined: the text is outside the subset this reader vouches for.
struct Declined;

type Read<T> = Result<T, Declined>;

/// The events of `text` (one document) with the parser's spans, or `None` when `text` is
/// outside the subset.
pub fn read(text: &str) -> Option<Vec<(Event<'_>, Span)>> {
    let bytes = text.as_bytes();
    // Printable ASCII and line breaks only: no tabs, carriage returns or control characters.
    if !text.ends_with('\n') {
        return None;
    }
    // Without branches per byte, so the compiler can do 64 bytes at a time.
    let mut lines = 0usize;
    for chunk in bytes.chunks(64) {
        // Byte-wide counters (at most 64 here): byte lanes.
        let (mut breaks, mut odd) = (0u8, 0u8);
        for &b in chunk {
            breaks += u8::from(b == b'\n');
            odd |= u8::from((b < 0x20) & (b != b'\n') | (b >= 0x7f));
        }
        if odd != 0 {
            return None;
        }
        lines += usize::from(breaks);
    }
    let mut r = Reader {
        text,
        b: bytes,
        pos: 0,
        line: 1,
        // A block-style line gives one to three events (a key and its value, a mapping or
        // sequence start or end): room for three, so the list is not copied as it grows.
        out: Vec::with_capacity(lines.saturating_mul(3).saturating_add(8)),
    };
    r.document().ok()?;
    Some(r.out)
}

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    /// The start of the current line.
    pos: usize,
    /// The current line's number (1-based).
    line: usize,
    out: Vec<(Event<'a>, Span)>,
}

fn plain(s: &str) -> Event<'_> {
    Event::Scalar(Cow::Borrowed(s), ScalarStyle::Plain, 0, None)
}

/// A quoted scalar whose text ends at `close` in `body` (after its opening quote): the body
/// itself when it had no escape, else the unescaped text so far (`owned`) plus the rest from `i`.
fn quoted(
    body: &str,
    owned: Option<String>,
    i: usize,
    close: usize,
    style: ScalarStyle,
) -> Event<'_> {
    let value = match owned {
        Some(mut s) => {
            s.push_str(&body[i..close]);
            Cow::Owned(s)
        }
        None => Cow::Borrowed(&body[..close]),
    };
    Event::Scalar(value, style, 0, None)
}

/// A character that cannot start a plain scalar (or needs care this reader does not take).
fn bad_start(c: u8) -> bool {
    matches!(
        c,
        b'[' | b']'
            | b'{'
            | b'}'
            | b','
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
            | b'?'
            | b':'
            | b' '
            | b'\n'
    )
}

impl<'a> Reader<'a> {
    /// The parser's marker for byte `p` of the current line (or the end of the text).
    fn mark(&self, p: usize) -> Marker {
        Marker::new(p, self.line, p - self.pos)
    }

    fn push(&mut self, event: Event<'a>, from: usize, to: usize) {
        let span = Span::new(self.mark(from), self.mark(to));
        self.out.push((event, span));
    }

    /// An event at the next token, which [`Reader::content`] has moved to (`indent` of its line,
    /// `None` at the end of the text).
    fn push_at_next(&mut self, event: Event<'a>, indent: Option<usize>) {
        let p = self.pos + indent.unwrap_or(0);
        self.push(event, p, p);
    }

    /// The end of the line starting at `at` (the index of its `\n`).
    fn line_end(&self, at: usize) -> usize {
        self.b[at..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(self.b.len(), |i| at + i)
    }

    fn indent(&self, at: usize) -> usize {
        self.b[at..].iter().take_while(|&&c| c == b' ').count()
    }

    /// Past the blanks from `at` and a comment after them, to the line's end: where the parser's
    /// span of a quoted scalar or a flow indicator ends.
    fn blanks_end(&self, at: usize) -> usize {
        let i = at + self.indent(at);
        if self.b[i] == b'#' && i > at {
            self.line_end(i)
        } else {
            i
        }
    }

    /// Moves to the start of the next line after the one holding `at`.
    fn next_line(&mut self, at: usize) {
        self.pos = (self.line_end(at) + 1).min(self.b.len());
        self.line += 1;
    }

    /// Skips blank and comment-only lines from `pos`: the indentation of the next content line
    /// (`None` at the end) and the largest indentation of a comment line skipped.
    fn content(&mut self) -> Read<(Option<usize>, Option<usize>)> {
        let mut comments = None;
        while self.pos < self.b.len() {
            let indent = self.indent(self.pos);
            match self.b[self.pos + indent] {
                b'\n' => {
                    self.pos += indent + 1;
                    self.line += 1;
                }
                b'#' => {
                    comments = comments.max(Some(indent));
                    self.next_line(self.pos);
                }
                _ => {
                    let rest = &self.b[self.pos..];
                    if indent == 0 && (rest.starts_with(b"---") || rest.starts_with(b"...")) {
                        return Err(Declined);
                    }
                    return Ok((Some(indent), comments));
                }
            }
        }
        Ok((None, comments))
    }

    /// After a value written on its line, nothing may continue it: the next content line (and
    /// any comment line before it) is indented at most `n`.
    fn ends_at(&mut self, n: usize) -> Read<()> {
        match self.content()? {
            (Some(i), _) if i > n => Err(Declined),
            (_, Some(c)) if c > n => Err(Declined),
            _ => Ok(()),
        }
    }

    /// Only blanks and a comment from `at` to the end of the line.
    fn rest_is_empty(&self, at: usize) -> Read<()> {
        let i = at + self.indent(at);
        match self.b[i] {
            b'\n' => Ok(()),
            b'#' if i > at => Ok(()),
            _ => Err(Declined),
        }
    }

    fn is_dash(&self, at: usize) -> bool {
        self.b[at] == b'-' && matches!(self.b.get(at + 1), Some(b' ' | b'\n'))
    }

    fn document(&mut self) -> Read<()> {
        self.push(Event::StreamStart, 0, 0);
        let marker = self.content_or_marker();
        // The root mapping may be indented (a ResourceList's item read with its columns kept).
        let (Some(root), _) = self.content()? else {
            return Err(Declined);
        };
        let first = self.pos + root;
        if self.is_dash(first) {
            return Err(Declined);
        }
        match marker {
            Some(span) => self.out.push((Event::DocumentStart(true), span)),
            None => self.push(Event::DocumentStart(false), first, first),
        }
        self.mapping(root, None)?;
        if self.pos != self.b.len() {
            return Err(Declined);
        }
        self.push(Event::DocumentEnd, self.pos, self.pos);
        self.push(Event::StreamEnd, self.pos, self.pos);
        Ok(())
    }

    /// Skips the lines before the content, taking a `---` line among them: its span.
    fn content_or_marker(&mut self) -> Option<Span> {
        let mut marker = None;
        while self.pos < self.b.len() {
            let indent = self.indent(self.pos);
            match self.b[self.pos + indent] {
                b'\n' => {
                    self.pos += indent + 1;
                    self.line += 1;
                }
                b'#' => self.next_line(self.pos),
                _ if indent == 0
                    && marker.is_none()
                    && self.text[self.pos..].starts_with("---\n") =>
                {
                    marker = Some(Span::new(self.mark(self.pos), self.mark(self.pos + 3)));
                    self.next_line(self.pos);
                }
                _ => break,
            }
        }
        marker
    }

    /// A key at `at` (plain or quoted) followed by `:` and a blank or the line's end: the key's
    /// event, where its span ends and the index after the `:`. `None` when the text there is not
    /// such a key.
    fn key(&self, at: usize) -> Read<Option<(Event<'a>, usize, usize)>> {
        match self.b[at] {
            b'\'' | b'"' => {
                let (event, after) = self.quoted(at, self.line_end(at))?;
                let colon = after + self.indent(after);
                if colon - at > 1000 {
                    return Err(Declined);
                }
                if self.b[colon] == b':' && matches!(self.b[colon + 1], b' ' | b'\n') {
                    return Ok(Some((event, colon, colon + 1)));
                }
                Ok(None)
            }
            c if bad_start(c) || self.is_dash(at) => Ok(None),
            _ => {
                // The first `:` followed by a blank or the line's end; a comment before it is
                // declined.
                let mut i = at + 1;
                let colon = loop {
                    match self.b[i] {
                        b'\n' => return Ok(None),
                        b':' if matches!(self.b[i + 1], b' ' | b'\n') => break i,
                        b'#' if self.b[i - 1] == b' ' => return Err(Declined),
                        _ => i += 1,
                    }
                };
                // The parser's limit for an implicit key runs to its `:`.
                if colon - at > 1000 {
                    return Err(Declined);
                }
                let key = self.text[at..colon].trim_end_matches(' ');
                Ok(Some((plain(key), at + key.len(), colon + 1)))
            }
        }
    }

    /// A block mapping whose keys are at column `m`; `first` is where its first key is when it
    /// starts after a `- ` on the same line (otherwise at `pos` + `m`).
    fn mapping(&mut self, m: usize, mut first: Option<usize>) -> Read<()> {
        let at = first.unwrap_or(self.pos + m);
        self.push(Event::MappingStart(0, None), at, at);
        let next = loop {
            let at = first.take().unwrap_or(self.pos + m);
            let Some((key, key_end, after)) = self.key(at)? else {
                return Err(Declined);
            };
            self.push(key, at, key_end);
            self.value(m, after, true)?;
            match self.content()? {
                (Some(i), _) if i == m => {
                    if self.is_dash(self.pos + m) {
                        return Err(Declined);
                    }
                }
                (Some(i), _) if i > m => return Err(Declined),
                (next, _) => break next,
            }
        };
        self.push_at_next(Event::MappingEnd, next);
        Ok(())
    }

    /// A block sequence whose dashes are at column `n`, starting at `pos`; `compact` when its
    /// dashes are at its mapping's column (the parser's indentless sequence).
    fn sequence(&mut self, n: usize, compact: bool) -> Read<()> {
        let dash = self.pos + n;
        if compact {
            let entry = self.blanks_end(dash + 1);
            self.push(Event::SequenceStart(0, None), entry, entry);
        } else {
            self.push(Event::SequenceStart(0, None), dash, dash);
        }
        let next = loop {
            let dash = self.pos + n;
            if !self.is_dash(dash) {
                return Err(Declined);
            }
            let at = dash + 1;
            let content = at + self.indent(at);
            match self.b[content] {
                b'-' if self.is_dash(content) => return Err(Declined),
                b'\n' | b'#' => self.value(n, at, false)?,
                _ => match self.key(content)? {
                    Some(_) => {
                        let col = content - self.pos;
                        self.mapping(col, Some(content))?;
                    }
                    None => self.value(n, at, false)?,
                },
            }
            match self.content()? {
                (Some(i), _) if i == n && self.is_dash(self.pos + n) => {}
                (Some(i), _) if i > n => return Err(Declined),
                (next, _) => break next,
            }
        };
        self.push_at_next(Event::SequenceEnd, next);
        Ok(())
    }

    /// The value after a key's `:` or an item's `-` at `at`, in a collection at column `n`
    /// (`in_map`: a mapping's value, whose sequence may have its dashes at `n`).
    fn value(&mut self, n: usize, at: usize, in_map: bool) -> Read<()> {
        let start = at + self.indent(at);
        let end = self.line_end(at);
        match self.b[start] {
            b'\n' | b'#' => {
                if self.b[start] == b'#' && start == at {
                    return Err(Declined);
                }
                // An empty value's span: the `:` of a mapping, or past the `-` and what follows
                // it on its line.
                let empty = if in_map { at - 1 } else { end };
                let empty = Span::new(self.mark(empty), self.mark(empty));
                self.next_line(at);
                match self.content()? {
                    (Some(i), c) if i > n => {
                        if c.is_some_and(|c| c > i) {
                            return Err(Declined);
                        }
                        if self.is_dash(self.pos + i) {
                            self.sequence(i, false)
                        } else {
                            self.mapping(i, None)
                        }
                    }
                    (Some(i), c) if i == n && in_map && self.is_dash(self.pos + i) => {
                        if c.is_some_and(|c| c > i) {
                            return Err(Declined);
                        }
                        self.sequence(i, true)
                    }
                    (_, c) => {
                        if c.is_some_and(|c| c > n) {
                            return Err(Declined);
                        }
                        self.out.push((plain(""), empty));
                        Ok(())
                    }
                }
            }
            b'|' => self.literal(n, start, end),
            b'\'' | b'"' => {
                let (event, after) = self.quoted(start, end)?;
                self.rest_is_empty(after)?;
                self.push(event, start, end);
                self.next_line(start);
                self.ends_at(n)
            }
            b'[' => {
                self.flow_sequence(start, end)?;
                self.next_line(start);
                self.ends_at(n)
            }
            b'{' => {
                if self.b[start + 1] != b'}' {
                    return Err(Declined);
                }
                self.rest_is_empty(start + 2)?;
                self.push(Event::MappingStart(0, None), start, start + 1);
                self.push(Event::MappingEnd, start + 1, end);
                self.next_line(start);
                self.ends_at(n)
            }
            c if bad_start(c) || self.is_dash(start) => Err(Declined),
            _ => {
                // Up to a comment or the line's end; a `:` followed by a blank or the line's
                // end would make it a key (an error in a value).
                let mut i = start + 1;
                while i < end {
                    match self.b[i] {
                        b':' if matches!(self.b[i + 1], b' ' | b'\n') => return Err(Declined),
                        b'#' if self.b[i - 1] == b' ' => break,
                        _ => i += 1,
                    }
                }
                let content = self.text[start..i].trim_end_matches(' ');
                self.push(plain(content), start, start + content.len());
                self.next_line(start);
                self.ends_at(n)
            }
        }
    }

    /// A quoted scalar starting at `at` and closed on its line (before `end`): its event and the
    /// index after the closing quote.
    fn quoted(&self, at: usize, end: usize) -> Read<(Event<'a>, usize)> {
        let quote = self.b[at];
        let body = &self.text[at + 1..end];
        if quote == b'"' {
            // `\"` and `\\` are the only escapes read here (the ones results and messages
            // quoting other text need); any other is declined.
            let mut i = 0;
            let mut owned: Option<String> = None;
            loop {
                let close = body[i..].find(['"', '\\']).ok_or(Declined)? + i;
                if body.as_bytes()[close] == b'\\' {
                    let c = match body.as_bytes().get(close + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        _ => return Err(Declined),
                    };
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&body[i..close]);
                    s.push(c);
                    i = close + 2;
                    continue;
                }
                let event = quoted(body, owned, i, close, ScalarStyle::DoubleQuoted);
                return Ok((event, at + 1 + close + 1));
            }
        }
        let mut i = 0;
        let mut owned: Option<String> = None;
        loop {
            let close = body[i..].find('\'').ok_or(Declined)? + i;
            if body.as_bytes().get(close + 1) == Some(&b'\'') {
                let s = owned.get_or_insert_with(String::new);
                s.push_str(&body[i..=close]);
                i = close + 2;
                continue;
            }
            let event = quoted(body, owned, i, close, ScalarStyle::SingleQuoted);
            return Ok((event, at + 1 + close + 1));
        }
    }

    /// `[a, "b", c]` on one line, from `at` (its `[`).
    fn flow_sequence(&mut self, at: usize, end: usize) -> Read<()> {
        let mut i = at + 1;
        i += self.indent(i);
        self.push(Event::SequenceStart(0, None), at, i);
        if self.b[i] == b']' {
            self.rest_is_empty(i + 1)?;
            self.push(Event::SequenceEnd, i, end);
            return Ok(());
        }
        loop {
            match self.b[i] {
                b'\'' | b'"' => {
                    let (event, after) = self.quoted(i, end)?;
                    let to = self.blanks_end(after);
                    self.push(event, i, to);
                    i = after;
                }
                c if bad_start(c) || c == b'-' => return Err(Declined),
                _ => {
                    let stop = self.text[i..end]
                        .find([',', ']', '[', '{', '}', '#', ':'])
                        .ok_or(Declined)?
                        + i;
                    if !matches!(self.b[stop], b',' | b']') {
                        return Err(Declined);
                    }
                    // `[a -, b]`: the parser refuses a word of a flow plain scalar that is a `-`
                    // right before a flow indicator.
                    if self.text[i..stop].ends_with(" -") {
                        return Err(Declined);
                    }
                    let item = self.text[i..stop].trim_end_matches(' ');
                    self.push(plain(item), i, i + item.len());
                    i = stop;
                }
            }
            i += self.indent(i);
            match self.b[i] {
                b',' => {
                    i += 1;
                    i += self.indent(i);
                    if matches!(self.b[i], b']' | b',' | b'\n' | b'#') {
                        return Err(Declined);
                    }
                }
                b']' => {
                    self.rest_is_empty(i + 1)?;
                    self.push(Event::SequenceEnd, i, end);
                    return Ok(());
                }
                _ => return Err(Declined),
            }
        }
    }

    /// A literal block scalar (`|` or `|-`) whose header is at `at`, in a collection at column
    /// `n`.
    fn literal(&mut self, n: usize, at: usize, end: usize) -> Read<()> {
        let header = &self.text[at..end];
        let strip = match header.trim_end_matches(' ') {
            "|" => false,
            "|-" => true,
            _ => return Err(Declined),
        };
        self.next_line(at);
        if self.pos >= self.b.len() {
            return Err(Declined);
        }
        let ci = self.indent(self.pos);
        if ci <= n || self.b[self.pos + ci] == b'\n' {
            return Err(Declined);
        }
        let from = self.mark(self.pos + ci);
        let mut value = String::new();
        let mut blank = 0usize;
        let mut stop = 0;
        while self.pos < self.b.len() {
            let indent = self.indent(self.pos);
            let line_end = self.line_end(self.pos);
            if self.b[self.pos + indent] == b'\n' {
                // A blank line with more spaces than the content's indentation holds spaces.
                if indent > 0 {
                    return Err(Declined);
                }
                blank += 1;
            } else if indent >= ci {
                if !value.is_empty() {
                    value.push('\n');
                }
                for _ in 0..blank {
                    value.push('\n');
                }
                blank = 0;
                value.push_str(&self.text[self.pos + ci..line_end]);
            } else {
                stop = indent;
                break;
            }
            self.next_line(self.pos);
        }
        if !strip {
            value.push('\n');
        }
        let to = self.mark(self.pos + stop);
        self.out.push((
            Event::Scalar(Cow::Owned(value), ScalarStyle::Literal, 0, None),
            Span::new(from, to),
        ));
        self.ends_at(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saphyr_parser::Parser;

    fn parsed(text: &str) -> Option<Vec<(Event<'_>, Span)>> {
        Parser::new_from_str(text)
            .collect::<Result<Vec<_>, _>>()
            .ok()
    }

    /// Every case is read (or declined) as listed, and what is read equals the parser's events.
    #[test]
    fn agrees_with_the_parser_or_declines() {
        let read_cases = [
            "a: b\n",
            "---\n# c\napiVersion: v1\nkind: ConfigMap   # c\nmetadata:\n  name: a\n  labels:\n    x: \"y\"\n    z: 'q''s'\n\ndata:\n  a: |\n    l1\n\n      l2\n    # not a comment\n\n  b: [ \"x\", y ,z]\n  e: []\n  f: {}\n  g: |-\n    s\n",
            "list:\n- a\n- b: 1\n  c: 2\n-\n  d: 3\n- \"q\": x\nind:\n  - p\n  -\n  - q:\n  - r: \n    s: t\nempty:\nlast: v # c\n",
            "a:\n  b:\n    c: 1\n  # comment\nd: x:y\ne: -1\nf: a#b\ng: a [b] {c}\n",
            "# head\n\n---\n\na: 'x' # c\nb: \"\" \n",
            "---\na: \"b\"   # c\nc: 'd'  \n\"k\" : v  \nl  : x   # y\nm: [a]  \nn: {}  # c\no: [ ]\n",
            "a: |\n  x\n\n  y\n\n\nb: |-\n    z\n# c\nc:\n- p: 1\n  q: 2\n- r: 3\n",
            "# x\n---\n# y\na:\n  - b: \n    c: 1\n  - d\n  -\n  - e\n",
            "a:\n  b: |\n    x\n",
            "a:\n  b:\n  - x\nc: 1\n",
            "a:\n- x\n-   y\n-\n-   \nb: 1\n",
            "# c\n   a: b\n   c:\n   - x\n   d:\n     e: f\n",
            "a: \"say \\\"hi\\\" \\\\ x\"\n\"k \\\"q\\\"\": \"\\\\\"\nb: \"\\\"\\\"\" # c\nl: [\"\\\"\", x]\n",
        ];
        for text in read_cases {
            let fast = read(text);
            assert!(fast.is_some(), "declined {text:?}");
            assert_eq!(fast, parsed(text), "{text:?}");
        }
        let declined = [
            "a: b",
            "a: &x b\nc: *x\n",
            "a: !!str b\n",
            "a: b\n  c\n",
            "a: b\n\n  c\n",
            "a: b\n   # c\nd: e\n",
            "a: \"b\\n\"\n",
            "a: \"b\\/\"\n",
            "a: \"b\\\"\n",
            "a: \"b\\\n",
            "a: 'b\n  c'\n",
            "a: >\n  b\n",
            "a: |2\n  b\n",
            "a: |\n\n  b\n",
            "? a\n: b\n",
            "a: [b,\n  c]\n",
            "a: [b, ]\n",
            "a: [b -, c]\n",
            "a: [b, c -]\n",
            "a: {b: c}\n",
            "- a\n",
            "  a: b\nc: d\n",
            "a: b\n---\nc: d\n",
            "a: b\n...\n",
            "a:\tb\n",
            "a: b\r\n",
            "a: b\u{1}c\n",
            "a: b\u{7f}\n",
            "a: é\n",
            "a: b: c\n",
            "a:\n- - b\n",
            "a:\n  - b\n  c: d\n",
            "--- a: b\n",
            "%YAML 1.1\n---\na: b\n",
            "",
            "# only\n",
        ];
        for text in declined {
            assert_eq!(read(text), None, "{text:?}");
        }
    }
}

#[cfg(test)]
mod corpus {
    use super::*;
    use crate::yaml::split::split_documents;
    use saphyr_parser::Parser;

    fn yaml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                yaml_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }

    /// Every document of the pinned corpus and the golden cases that the reader takes gives the
    /// parser's events and spans, and it takes most of them (it is no use if it declines all).
    #[test]
    fn agrees_with_the_parser_on_every_document_it_reads() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        yaml_files(&root.join("tests/corpus"), &mut files);
        yaml_files(&root.join("testdata"), &mut files);
        let (mut read_docs, mut all) = (0, 0);
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            for seg in split_documents(&text) {
                all += 1;
                let Some(fast) = read(seg.text) else {
                    continue;
                };
                read_docs += 1;
                let parsed: Option<Vec<_>> = Parser::new_from_str(seg.text)
                    .collect::<Result<_, _>>()
                    .ok();
                assert_eq!(Some(fast), parsed, "{}: {:?}", file.display(), seg.text);
            }
        }
        assert!(read_docs * 2 > all, "read {read_docs} of {all} documents");
        eprintln!("fast reader: read {read_docs} of {all} documents");
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[test]
    fn an_implicit_key_is_at_most_a_thousand_characters_to_its_colon() {
        let short = format!("{}: v\n", "k".repeat(1000));
        assert!(read(&short).is_some());
        for long in [
            format!("{}: v\n", "k".repeat(1001)),
            format!("k{}: v\n", " ".repeat(1100)),
            format!("'k'{}: v\n", " ".repeat(1100)),
        ] {
            assert!(read(&long).is_none());
        }
    }
}
