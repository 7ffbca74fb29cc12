//! Splits a multi-document YAML stream into documents as byte spans, so that a document no rule
//! touches can be written back exactly as it came in.
//!
//! A line that starts with `---` or `...` (followed by a blank or the end of the line) at column 0
//! always ends the current document: YAML forbids such lines inside any scalar, so a textual split
//! agrees with the parser and stays O(n) without parsing documents we may never need.

/// One document of the stream, with everything that belongs to it in the source text.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    /// Byte offset of the segment in the stream.
    pub start: usize,
    /// The segment's text: its `---` line (if any), header comments, content and `...` line.
    pub text: &'a str,
    /// 1-based line number of the segment's first line in the stream.
    pub first_line: usize,
}

impl Segment<'_> {
    /// True when the segment holds no YAML content: only markers, blank lines and comments.
    pub fn is_blank(&self) -> bool {
        self.text.lines().all(|line| {
            let t = line.trim_start_matches('\u{feff}').trim();
            t.is_empty() || t.starts_with('#') || is_marker(t, "---") && t.len() == 3 || t == "..."
        })
    }

    /// The comment lines that head the document (Helm's `# Source:`), without line endings.
    pub fn header_comments(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for line in self.text.lines() {
            let t = line.trim_start_matches('\u{feff}').trim_end_matches('\r');
            let trimmed = t.trim();
            if trimmed.is_empty() || (is_marker(t, "---") && trimmed.len() == 3) {
                continue;
            }
            if trimmed.starts_with('#') {
                out.push(trimmed);
            } else {
                break;
            }
        }
        out
    }
}

/// True when `line` starts with the document marker `marker` followed by a blank or end of line.
fn is_marker(line: &str, marker: &str) -> bool {
    line.starts_with(marker)
        && matches!(
            line.as_bytes().get(marker.len()),
            None | Some(b' ' | b'\t' | b'\r' | b'\n')
        )
}

/// Splits `stream` into segments; concatenating every segment's text gives back `stream`.
pub fn split_documents(stream: &str) -> Vec<Segment<'_>> {
    split(stream, true)
}

/// [`split_documents`]; `skip`: lines that cannot be markers are passed over 64 bytes at a time
/// (without it every line is looked at, which the tests compare with).
fn split(stream: &str, skip: bool) -> Vec<Segment<'_>> {
    let bytes = stream.as_bytes();
    let mut segments = Vec::new();
    let mut seg_start = 0usize;
    let mut seg_line = 1usize;
    let mut line_no = 1usize;
    let mut pos = 0usize;
    let mut after_directive = false;
    while pos < bytes.len() {
        // Only a line that starts with `-`, `.` or `%` can be a marker or a directive.
        if skip && pos > 0 && !may_start_marker(bytes[pos]) {
            let (next, breaks) = next_line_starting(bytes, pos, may_start_marker);
            line_no += breaks;
            pos = next;
            continue;
        }
        let line_end = match memchr_newline(&bytes[pos..]) {
            Some(i) => pos + i + 1,
            None => bytes.len(),
        };
        let line = &stream[pos..line_end];
        let line_body = if pos == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        if line_body.starts_with('%') {
            // A directive belongs to the document its `---` opens.
            if pos > seg_start && !after_directive {
                segments.push(Segment {
                    start: seg_start,
                    text: &stream[seg_start..pos],
                    first_line: seg_line,
                });
                seg_start = pos;
                seg_line = line_no;
            }
            after_directive = true;
        } else if is_marker(line_body, "---") && after_directive {
            after_directive = false;
        } else if is_marker(line_body, "---") {
            // `---` begins a new document; the text before it is its own segment.
            if pos > seg_start {
                segments.push(Segment {
                    start: seg_start,
                    text: &stream[seg_start..pos],
                    first_line: seg_line,
                });
            }
            seg_start = pos;
            seg_line = line_no;
        } else if is_marker(line_body, "...") {
            // `...` ends the document it closes; it stays with that document.
            segments.push(Segment {
                start: seg_start,
                text: &stream[seg_start..line_end],
                first_line: seg_line,
            });
            seg_start = line_end;
            seg_line = line_no + 1;
        }
        pos = line_end;
        line_no += 1;
    }
    if seg_start < bytes.len() {
        segments.push(Segment {
            start: seg_start,
            text: &stream[seg_start..],
            first_line: seg_line,
        });
    }
    segments
}

/// From `from` (the start of a line), the start of the next line whose first byte `starts`
/// accepts (or the end of `bytes`), and how many line breaks lie before it. 64 bytes at a time,
/// without a branch per byte, while no such line starts among them.
pub(crate) fn next_line_starting(
    bytes: &[u8],
    from: usize,
    starts: impl Fn(u8) -> bool,
) -> (usize, usize) {
    let n = bytes.len();
    let mut breaks = 0usize;
    let mut k = from;
    while k + 65 <= n {
        let (here, next) = (&bytes[k..k + 64], &bytes[k + 1..k + 65]);
        let (mut lines, mut hit) = (0u8, 0u8);
        for (&a, &b) in here.iter().zip(next) {
            let nl = a == b'\n';
            lines += u8::from(nl);
            hit |= u8::from(nl & starts(b));
        }
        if hit != 0 {
            break;
        }
        breaks += usize::from(lines);
        k += 64;
    }
    while k < n {
        if bytes[k] == b'\n' {
            breaks += 1;
            if bytes.get(k + 1).is_some_and(|&b| starts(b)) {
                return (k + 1, breaks);
            }
        }
        k += 1;
    }
    (n, breaks)
}

/// A byte a marker (`---`, `...`) or a directive (`%`) starts with.
fn may_start_marker(b: u8) -> bool {
    (b == b'-') | (b == b'.') | (b == b'%')
}

fn memchr_newline(haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The skipping split finds the same segments (spans and first lines) as the line-by-line
    /// one: markers, directives and `...` at every offset around the 64-byte steps, long lines,
    /// `\r\n`, a missing final line break, a byte order mark.
    #[test]
    fn skipping_lines_splits_as_reading_every_line() {
        let pieces = [
            "a: 1\n",
            "---\n",
            "--- # c\n",
            "...\n",
            "%YAML 1.1\n",
            "-x: 1\n",
            ".a: 2\n",
            "- item\n",
            "  ---\n",
            "key: value-with-long-text-to-cross-the-64-byte-steps----\n",
            "b: 2\r\n",
            "---\r\n",
            "# c\n",
            "\n",
            "%\n",
            "....\n",
        ];
        let mut seed = 7u64;
        for case in 0..3000 {
            let mut text = String::from(if case % 7 == 0 { "\u{feff}" } else { "" });
            let len = 1 + case % 40;
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            if case % 3 == 0 {
                text.pop();
            }
            let got: Vec<_> = split_documents(&text)
                .iter()
                .map(|s| (s.start, s.text, s.first_line))
                .collect();
            let want: Vec<_> = split(&text, false)
                .iter()
                .map(|s| (s.start, s.text, s.first_line))
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn concatenation_gives_back_the_stream() {
        let s = "\u{feff}# lead\n---\n# Source: a\nkind: A\n...\n# between\n---\nkind: B\r\n---\n";
        let segs = split_documents(s);
        let joined: String = segs.iter().map(|s| s.text).collect();
        assert_eq!(joined, s);
        assert_eq!(segs.len(), 5);
        assert!(segs[0].is_blank());
        assert_eq!(segs[1].header_comments(), vec!["# Source: a"]);
        assert_eq!(segs[1].first_line, 2);
        assert!(segs[2].is_blank());
        assert_eq!(segs[3].first_line, 7);
        assert!(segs[4].is_blank());
    }

    #[test]
    fn dashes_inside_text_do_not_split() {
        let s = "a: |\n  ---\n  x\nb: ---x\n";
        assert_eq!(split_documents(s).len(), 1);
    }
}
