//! Text from the network made safe for a terminal: control characters (escape sequences that
//! could move the cursor, retitle the window or hide text) are written as `\u{…}` escapes.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: C0 and C1 controls and DEL, but tab.
fn is_unsafe(c: char) -> bool {
    c.is_control() && c != '\t'
}

/// `text` with its control characters (but tabs) escaped.
pub(crate) fn escape_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            escaped.push_str(&format!("\\u{{{:02x}}}", u32::from(c)));
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// `data` with its control characters escaped: UTF-8 runs as [`escape_text`], and bytes that
/// are not UTF-8 as `\x..` when they are C0 controls or DEL (others pass as they are).
pub(crate) fn escape_bytes(data: &[u8]) -> Cow<'_, [u8]> {
    if let Ok(text) = std::str::from_utf8(data) {
        return match escape_text(text) {
            Cow::Borrowed(_) => Cow::Borrowed(data),
            Cow::Owned(escaped) => Cow::Owned(escaped.into_bytes()),
        };
    }
    let mut escaped = Vec::with_capacity(data.len() + 8);
    for &b in data {
        if (b < 0x20 && b != b'\t') || b == 0x7f {
            escaped.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            escaped.push(b);
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_not_copied() {
        assert!(matches!(escape_text("plain\ttext é"), Cow::Borrowed(_)));
        assert_eq!(escape_text("\u{1b}[31mred\u{7}"), "\\u{1b}[31mred\\u{07}");
        // A C1 control (CSI) as UTF-8.
        assert_eq!(escape_text("a\u{9b}2J"), "a\\u{9b}2J");
        assert_eq!(escape_text("line\nbreak"), "line\\u{0a}break");
        assert!(matches!(escape_bytes(b"ok"), Cow::Borrowed(_)));
        assert_eq!(
            &*escape_bytes(b"\x1b]0;title\x07"),
            b"\\u{1b}]0;title\\u{07}"
        );
        // Not UTF-8: C0 controls escaped, the rest as is.
        assert_eq!(&*escape_bytes(b"\xff\x1b[2J\xfe"), b"\xff\\x1b[2J\xfe");
    }
}
