//! Input cut into lines of bounded length, without I/O: `kds put` hands it what its reader's
//! buffer holds. It uses only `std`, so the fuzz targets include this file as it is.

/// A line as read: its bytes without the line break (`\n`, or `\r\n`), or the note that it
/// was longer than the limit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// The line's bytes.
    Data(&'a [u8]),
    /// The line held more bytes than the limit; they were read and dropped.
    Overlong,
}

/// The line being read. It never holds more than the limit and two bytes, whatever the input.
pub(crate) struct LineBuffer {
    /// The line so far, with its line break once it has one.
    line: Vec<u8>,
    /// Whether the line so far is past the limit (then `line` is empty).
    overlong: bool,
    /// The longest line kept, without its line break.
    limit: usize,
}

impl LineBuffer {
    /// A buffer for lines of at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            overlong: false,
            limit,
        }
    }

    /// Takes bytes from the start of `available` up to and including the first line break.
    /// Returns how many it took and whether the line is complete; an incomplete line goes on
    /// with the next call, or ends with the input.
    pub(crate) fn push(&mut self, available: &[u8]) -> (usize, bool) {
        let (taken, ended) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        if !self.overlong {
            // The limit and a `\r\n`: a longer line is over the limit whatever follows.
            let room = self.limit.saturating_add(2).saturating_sub(self.line.len());
            if taken <= room {
                self.line.extend_from_slice(&available[..taken]);
            } else {
                self.overlong = true;
                self.line = Vec::new();
            }
        }
        debug_assert!(self.line.len() <= self.limit.saturating_add(2));
        (taken, ended)
    }

    /// Whether nothing has been taken since the last [`clear`](Self::clear).
    pub(crate) fn is_empty(&self) -> bool {
        self.line.is_empty() && !self.overlong
    }

    /// The line taken so far: call it once the line is complete or the input ended.
    pub(crate) fn line(&self) -> Line<'_> {
        let data = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let data = data.strip_suffix(b"\r").unwrap_or(data);
        if self.overlong || data.len() > self.limit {
            Line::Overlong
        } else {
            Line::Data(data)
        }
    }

    /// Makes room for the next line.
    pub(crate) fn clear(&mut self) {
        self.line.clear();
        self.overlong = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `input` fed in chunks of `chunk` bytes, as `kds put` reads them (`None`
    /// for a line over the limit).
    fn lines(input: &[u8], chunk: usize, limit: usize) -> Vec<Option<Vec<u8>>> {
        let owned = |buffer: &LineBuffer| match buffer.line() {
            Line::Data(data) => Some(data.to_vec()),
            Line::Overlong => None,
        };
        let mut buffer = LineBuffer::new(limit);
        let mut out = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let (taken, ended) = buffer.push(&rest[..chunk.min(rest.len())]);
            rest = &rest[taken..];
            if ended {
                out.push(owned(&buffer));
                buffer.clear();
            }
        }
        if !buffer.is_empty() {
            out.push(owned(&buffer));
        }
        out
    }

    #[test]
    fn lines_lose_their_breaks_and_long_ones_are_marked() {
        let input = b"abc\r\nabcd\n\nabcde\nab";
        for chunk in 1..=input.len() {
            assert_eq!(
                lines(input, chunk, 4),
                [
                    Some(b"abc".to_vec()),
                    Some(b"abcd".to_vec()),
                    Some(Vec::new()),
                    None,
                    Some(b"ab".to_vec())
                ],
                "chunks of {chunk}"
            );
        }
    }

    /// A regression test: a line was kept up to the limit and two bytes whether or not it
    /// ended in `\r\n`, so a line one or two bytes too long was handed on, to be refused
    /// later without its line number.
    #[test]
    fn a_last_line_without_a_break_is_held_to_the_limit() {
        assert_eq!(lines(b"abcde", 2, 4), [None]);
        assert_eq!(lines(b"abcdef", 6, 4), [None]);
        assert_eq!(lines(b"abcd\r", 6, 4), [Some(b"abcd".to_vec())]);
    }
}
