//! A reader for the plain block style most Kubernetes manifests are written in, giving the same
//! events as `saphyr-parser` (without positions) in a fraction of its time: scalars are slices of
//! the text, not a `String` each. [`super::verify`] reads every edited document back with it.
//!
//! It accepts only a narrow subset and declines (`None`) everything else, which the caller then
//! hands to `saphyr-parser`: ASCII text without tabs or carriage returns ending in a line break;
//! at most one `---` line before a root block mapping; block mappings and sequences (compact or
//! indented, `- key: value` items); plain, single- and double-quoted (no escapes) scalars on one
//! line; `[...]` flow sequences of such scalars on one line, `[]` and `{}`; literal block scalars
//! `|` and `|-`; comments. Anything with a second meaning (anchors, aliases, tags, `?` keys,
//! multi-line plain or quoted scalars, folded scalars, indentation indicators, a more indented
//! comment right after a value, directives, `...`) is declined. In debug builds every accepted
//! text is also read by `saphyr-parser` and the two event lists must be equal, so every test
//! that edits a document checks this reader.

use std::borrow::Cow;

use saphyr_parser::{Event, ScalarStyle};

/// Declined: the text is outside the subset this reader vouches for.
struct Declined;

type Read<T> = Result<T, Declined>;

/// The events of `text` (one document), or `None` when `text` is outside the subset.
pub fn read(text: &str) -> Option<Vec<Event<'_>>> {
    let bytes = text.as_bytes();
    if !text.ends_with('\n') || bytes.iter().any(|&b| b >= 0x80 || b == b'\t' || b == b'\r') {
        return None;
    }
    let mut r = Reader {
        text,
        b: bytes,
        pos: 0,
        out: Vec::with_capacity(text.len() / 10 + 8),
    };
    r.document().ok()?;
    Some(r.out)
}

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    /// The start of the current line.
    pos: usize,
    out: Vec<Event<'a>>,
}

fn plain(s: &str) -> Event<'_> {
    Event::Scalar(Cow::Borrowed(s), ScalarStyle::Plain, 0, None)
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
    /// The end of the line starting at `at` (the index of its `\n`).
    fn line_end(&self, at: usize) -> usize {
        self.text[at..].find('\n').map_or(self.b.len(), |i| at + i)
    }

    fn indent(&self, at: usize) -> usize {
        self.b[at..].iter().take_while(|&&c| c == b' ').count()
    }

    /// Moves to the start of the next line after the one holding `at`.
    fn next_line(&mut self, at: usize) {
        self.pos = (self.line_end(at) + 1).min(self.b.len());
    }

    /// Skips blank and comment-only lines from `pos`: the indentation of the next content line
    /// (`None` at the end) and the largest indentation of a comment line skipped.
    fn content(&mut self) -> Read<(Option<usize>, Option<usize>)> {
        let mut comments = None;
        while self.pos < self.b.len() {
            let indent = self.indent(self.pos);
            match self.b.get(self.pos + indent) {
                Some(b'\n') => self.pos += indent + 1,
                Some(b'#') => {
                    comments = comments.max(Some(indent));
                    self.next_line(self.pos);
                }
                Some(_) => {
                    let rest = &self.b[self.pos..];
                    if indent == 0 && (rest.starts_with(b"---") || rest.starts_with(b"...")) {
                        return Err(Declined);
                    }
                    return Ok((Some(indent), comments));
                }
                None => self.pos = self.b.len(),
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
        match self.b.get(i) {
            Some(b'\n') => Ok(()),
            Some(b'#') if i > at => Ok(()),
            _ => Err(Declined),
        }
    }

    fn is_dash(&self, at: usize) -> bool {
        self.b[at] == b'-' && matches!(self.b.get(at + 1), Some(b' ' | b'\n'))
    }

    fn document(&mut self) -> Read<()> {
        self.out.push(Event::StreamStart);
        let (first, _) = self.content_or_marker()?;
        let explicit = first;
        self.out.push(Event::DocumentStart(explicit));
        match self.content()? {
            (Some(0), _) => {}
            _ => return Err(Declined),
        }
        if self.is_dash(self.pos) {
            return Err(Declined);
        }
        self.mapping(0, None)?;
        if self.content()?.0.is_some() {
            return Err(Declined);
        }
        self.out.push(Event::DocumentEnd);
        self.out.push(Event::StreamEnd);
        Ok(())
    }

    /// Skips the lines before the content, taking a `---` line among them: whether there was one.
    fn content_or_marker(&mut self) -> Read<(bool, ())> {
        let mut marker = false;
        while self.pos < self.b.len() {
            let indent = self.indent(self.pos);
            match self.b.get(self.pos + indent) {
                Some(b'\n') => self.pos += indent + 1,
                Some(b'#') => self.next_line(self.pos),
                _ if indent == 0 && !marker && self.text[self.pos..].starts_with("---\n") => {
                    marker = true;
                    self.pos += 4;
                }
                _ => break,
            }
        }
        Ok((marker, ()))
    }

    /// A key at `at` (plain or quoted) followed by `:` and a blank or the line's end: the key's
    /// event and the index after the `:`. `None` when the text there is not such a key.
    fn key(&self, at: usize) -> Read<Option<(Event<'a>, usize)>> {
        let end = self.line_end(at);
        match self.b[at] {
            b'\'' | b'"' => {
                let (event, after) = self.quoted(at, end)?;
                let colon = after + self.indent(after);
                if colon - at > 1000 {
                    return Err(Declined);
                }
                if self.b.get(colon) == Some(&b':')
                    && matches!(self.b.get(colon + 1), Some(b' ' | b'\n'))
                {
                    return Ok(Some((event, colon + 1)));
                }
                Ok(None)
            }
            c if bad_start(c) || self.is_dash(at) => Ok(None),
            _ => {
                let line = &self.text[at..end];
                let Some(colon) = colon_at(line) else {
                    return Ok(None);
                };
                let key = line[..colon].trim_end_matches(' ');
                if key.len() > 1000 || key.contains(" #") {
                    return Err(Declined);
                }
                Ok(Some((plain(key), at + colon + 1)))
            }
        }
    }

    /// A block mapping whose keys are at column `m`; `first` is where its first key is when it
    /// starts after a `- ` on the same line (otherwise at `pos` + `m`).
    fn mapping(&mut self, m: usize, mut first: Option<usize>) -> Read<()> {
        self.out.push(Event::MappingStart(0, None));
        loop {
            let at = first.take().unwrap_or(self.pos + m);
            let Some((key, after)) = self.key(at)? else {
                return Err(Declined);
            };
            self.out.push(key);
            self.value(m, after, true)?;
            match self.content()? {
                (Some(i), _) if i == m => {
                    if self.is_dash(self.pos + m) {
                        return Err(Declined);
                    }
                }
                (Some(i), _) if i > m => return Err(Declined),
                _ => break,
            }
        }
        self.out.push(Event::MappingEnd);
        Ok(())
    }

    /// A block sequence whose dashes are at column `n`, starting at `pos`.
    fn sequence(&mut self, n: usize) -> Read<()> {
        self.out.push(Event::SequenceStart(0, None));
        loop {
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
                _ => break,
            }
        }
        self.out.push(Event::SequenceEnd);
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
                self.next_line(at);
                match self.content()? {
                    (Some(i), c) if i > n => {
                        if c.is_some_and(|c| c > i) {
                            return Err(Declined);
                        }
                        if self.is_dash(self.pos + i) {
                            self.sequence(i)
                        } else {
                            self.mapping(i, None)
                        }
                    }
                    (Some(i), c) if i == n && in_map && self.is_dash(self.pos + i) => {
                        if c.is_some_and(|c| c > i) {
                            return Err(Declined);
                        }
                        self.sequence(i)
                    }
                    (_, c) => {
                        if c.is_some_and(|c| c > n) {
                            return Err(Declined);
                        }
                        self.out.push(plain(""));
                        Ok(())
                    }
                }
            }
            b'|' => self.literal(n, start, end),
            b'\'' | b'"' => {
                let (event, after) = self.quoted(start, end)?;
                self.rest_is_empty(after)?;
                self.out.push(event);
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
                self.out.push(Event::MappingStart(0, None));
                self.out.push(Event::MappingEnd);
                self.next_line(start);
                self.ends_at(n)
            }
            c if bad_start(c) || self.is_dash(start) => Err(Declined),
            _ => {
                let line = &self.text[start..end];
                let content = match line.find(" #") {
                    Some(i) => &line[..i],
                    None => line,
                };
                let content = content.trim_end_matches(' ');
                if content.contains(": ") || content.ends_with(':') {
                    return Err(Declined);
                }
                self.out.push(plain(content));
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
            let close = body.find(['"', '\\']).ok_or(Declined)?;
            if body.as_bytes()[close] == b'\\' {
                return Err(Declined);
            }
            let event = Event::Scalar(
                Cow::Borrowed(&body[..close]),
                ScalarStyle::DoubleQuoted,
                0,
                None,
            );
            return Ok((event, at + 1 + close + 1));
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
            let value = match owned {
                Some(mut s) => {
                    s.push_str(&body[i..close]);
                    Cow::Owned(s)
                }
                None => Cow::Borrowed(&body[..close]),
            };
            let event = Event::Scalar(value, ScalarStyle::SingleQuoted, 0, None);
            return Ok((event, at + 1 + close + 1));
        }
    }

    /// `[a, "b", c]` on one line, from `at` (its `[`).
    fn flow_sequence(&mut self, at: usize, end: usize) -> Read<()> {
        self.out.push(Event::SequenceStart(0, None));
        let mut i = at + 1;
        i += self.indent(i);
        if self.b[i] == b']' {
            self.out.push(Event::SequenceEnd);
            return self.rest_is_empty(i + 1);
        }
        loop {
            match self.b[i] {
                b'\'' | b'"' => {
                    let (event, after) = self.quoted(i, end)?;
                    self.out.push(event);
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
                    self.out
                        .push(plain(self.text[i..stop].trim_end_matches(' ')));
                    i = stop;
                }
            }
            i += self.indent(i);
            match self.b[i] {
                b',' => {
                    i += 1;
                    i += self.indent(i);
                    if matches!(self.b[i], b']' | b',' | b'\n') {
                        return Err(Declined);
                    }
                }
                b']' => {
                    self.out.push(Event::SequenceEnd);
                    return self.rest_is_empty(i + 1);
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
        self.pos = end + 1;
        if self.pos >= self.b.len() {
            return Err(Declined);
        }
        let ci = self.indent(self.pos);
        if ci <= n || self.b[self.pos + ci] == b'\n' {
            return Err(Declined);
        }
        let mut value = String::new();
        let mut blank = 0usize;
        while self.pos < self.b.len() {
            let indent = self.indent(self.pos);
            let line_end = self.line_end(self.pos);
            if self.b[self.pos + indent] == b'\n' {
                if indent > ci {
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
                break;
            }
            self.pos = line_end + 1;
        }
        if !strip {
            value.push('\n');
        }
        self.out.push(Event::Scalar(
            Cow::Owned(value),
            ScalarStyle::Literal,
            0,
            None,
        ));
        self.ends_at(n)
    }
}

/// Where a plain key on `line` ends: the first `:` followed by a blank or the line's end.
fn colon_at(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let mut from = 0;
    while let Some(i) = line[from..].find(':') {
        let i = from + i;
        if matches!(b.get(i + 1), None | Some(b' ')) {
            return (i > 0).then_some(i);
        }
        from = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use saphyr_parser::Parser;

    fn parsed(text: &str) -> Option<Vec<Event<'_>>> {
        Parser::new_from_str(text)
            .map(|item| item.map(|(event, _)| event))
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
            "a: 'b\n  c'\n",
            "a: >\n  b\n",
            "a: |2\n  b\n",
            "a: |\n\n  b\n",
            "? a\n: b\n",
            "a: [b,\n  c]\n",
            "a: [b, ]\n",
            "a: {b: c}\n",
            "- a\n",
            "a: b\n---\nc: d\n",
            "a: b\n...\n",
            "a:\tb\n",
            "a: b\r\n",
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
