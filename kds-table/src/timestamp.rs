//! `scan.stream.initpos-timestamp`: a date in a `SimpleDateFormat` pattern, or epoch seconds.
//!
//! The pattern letters users write for timestamps are supported with Java's parsing rules:
//! numbers are read greedily unless the next element is another number (then exactly as many
//! digits as letters), fields out of range roll over (lenient), and text after a complete match
//! is ignored. `S` counts milliseconds. A pattern without a zone reads the time as UTC (Java would
//! use the JVM's zone). When the text does not match the pattern it is read as non-negative
//! epoch seconds with a fraction.

/// One element of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Element {
    Literal(String),
    /// A numeric field: the letter and how many times it was repeated.
    Number(char, usize),
    /// `a`: AM or PM.
    AmPm,
    /// `X`, `XX`, `XXX` (ISO 8601) or `Z` (RFC 822): a zone offset.
    Zone,
}

/// A parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern(Vec<Element>);

const NUMERIC: &str = "yMdHhkKmsS";

impl Pattern {
    /// Compiles a pattern; the error names the character that is not supported.
    pub(crate) fn compile(pattern: &str) -> Result<Self, String> {
        let mut elements = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                // Quoted text; '' is a quote.
                let mut text = String::new();
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    push_literal(&mut elements, "'");
                    continue;
                }
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(other) => text.push(other),
                        None => return Err("an unterminated quote".to_owned()),
                    }
                }
                push_literal(&mut elements, &text);
            } else if c.is_ascii_alphabetic() {
                let mut count = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    count += 1;
                }
                let element = match c {
                    c if NUMERIC.contains(c) => Element::Number(c, count),
                    'a' => Element::AmPm,
                    'X' if count <= 3 => Element::Zone,
                    'Z' => Element::Zone,
                    other => {
                        return Err(format!(
                            "the pattern letter '{other}', which is not supported"
                        ));
                    }
                };
                elements.push(element);
            } else {
                push_literal(&mut elements, &c.to_string());
            }
        }
        Ok(Self(elements))
    }

    /// Parses `text` to epoch milliseconds, or `None` when it does not match.
    pub(crate) fn parse(&self, text: &str) -> Option<i64> {
        let mut rest = text;
        let mut fields = Fields::default();
        for (i, element) in self.0.iter().enumerate() {
            match element {
                Element::Literal(literal) => rest = rest.strip_prefix(literal.as_str())?,
                Element::Number(letter, count) => {
                    let next_is_number = matches!(self.0.get(i + 1), Some(Element::Number(..)));
                    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                    let take = if next_is_number {
                        (*count).min(digits)
                    } else {
                        digits
                    };
                    if take == 0 {
                        return None;
                    }
                    let value: i64 = rest[..take].parse().ok()?;
                    rest = &rest[take..];
                    fields.set(*letter, value);
                }
                Element::AmPm => {
                    let upper = rest.get(..2)?.to_ascii_uppercase();
                    fields.pm = Some(match upper.as_str() {
                        "AM" => false,
                        "PM" => true,
                        _ => return None,
                    });
                    rest = &rest[2..];
                }
                Element::Zone => {
                    let (offset, used) = zone(rest)?;
                    fields.offset_seconds = offset;
                    rest = &rest[used..];
                }
            }
        }
        fields.millis()
    }
}

fn push_literal(elements: &mut Vec<Element>, text: &str) {
    if let Some(Element::Literal(last)) = elements.last_mut() {
        last.push_str(text);
    } else if !text.is_empty() {
        elements.push(Element::Literal(text.to_owned()));
    }
}

/// `Z`, `±hh`, `±hhmm` or `±hh:mm`: the offset in seconds and the bytes used.
fn zone(text: &str) -> Option<(i64, usize)> {
    if text.starts_with('Z') {
        return Some((0, 1));
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    let hours = text.get(1..3).filter(|s| digits(s))?.parse::<i64>().ok()?;
    let (minutes, used) = match (text.get(3..4), text.get(4..6), text.get(3..5)) {
        (Some(":"), Some(m), _) if digits(m) => (m.parse::<i64>().ok()?, 6),
        (_, _, Some(m)) if digits(m) => (m.parse::<i64>().ok()?, 5),
        _ => (0, 3),
    };
    Some((sign * (hours * 3600 + minutes * 60), used))
}

#[derive(Default)]
struct Fields {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    hour: i64,
    hour12: Option<i64>,
    pm: Option<bool>,
    minute: i64,
    second: i64,
    millis: i64,
    offset_seconds: i64,
}

impl Fields {
    fn set(&mut self, letter: char, value: i64) {
        match letter {
            'y' => self.year = Some(value),
            'M' => self.month = Some(value),
            'd' => self.day = Some(value),
            'H' => self.hour = value,
            'k' => self.hour = value % 24,
            'h' => self.hour12 = Some(value % 12),
            'K' => self.hour12 = Some(value),
            'm' => self.minute = value,
            's' => self.second = value,
            _ => self.millis = value,
        }
    }

    /// Epoch milliseconds, rolling fields over like a lenient Java calendar.
    fn millis(&self) -> Option<i64> {
        let year = self.year.unwrap_or(1970);
        let months = year
            .checked_mul(12)?
            .checked_add(self.month.unwrap_or(1).checked_sub(1)?)?;
        let year = months.div_euclid(12);
        // Far outside any stream's retention; also keeps the calendar arithmetic in range.
        if !(-1_000_000..=1_000_000).contains(&year) {
            return None;
        }
        let days = days_from_civil(year, months.rem_euclid(12) + 1)
            .checked_add(self.day.unwrap_or(1).checked_sub(1)?)?;
        let hour = match (self.hour12, self.pm) {
            (Some(h), Some(true)) => h.checked_add(12)?,
            (Some(h), _) => h,
            (None, _) => self.hour,
        };
        let seconds = days
            .checked_mul(86_400)?
            .checked_add(hour.checked_mul(3600)?)?
            .checked_add(self.minute.checked_mul(60)?)?
            .checked_add(self.second)?
            .checked_sub(self.offset_seconds)?;
        seconds.checked_mul(1000)?.checked_add(self.millis)
    }
}

/// Days from 1970-01-01 to the first of `month` in `year` (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Non-negative epoch seconds with a fraction, to milliseconds (truncated).
pub(crate) fn epoch_seconds(text: &str) -> Option<i64> {
    let value: f64 = text.trim().parse().ok()?;
    if !(0.0..9.0e15).contains(&value) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    Some((value * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pattern: &str, text: &str) -> Option<i64> {
        Pattern::compile(pattern).unwrap().parse(text)
    }

    const DEFAULT: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX";

    #[test]
    fn default_pattern() {
        assert_eq!(
            parse(DEFAULT, "2016-04-04T19:58:46.480-00:00"),
            Some(1_459_799_926_480)
        );
        // C19: one fractional digit is one millisecond count, as in Java.
        assert_eq!(
            parse(DEFAULT, "2020-08-13T09:18:00.0+01:00"),
            Some(1_597_306_680_000)
        );
        assert_eq!(
            parse(DEFAULT, "2020-08-13T08:18:00.000Z"),
            Some(1_597_306_680_000)
        );
    }

    #[test]
    fn custom_patterns() {
        assert_eq!(parse("yyyy-MM-dd", "2016-04-04"), Some(1_459_728_000_000));
        assert_eq!(
            parse("yyyy-MM-dd'T'HH:mm", "2020-08-13T09:23"),
            Some(1_597_310_580_000)
        );
        assert_eq!(
            parse("yyyyMMddHHmmss", "20160404195846"),
            Some(1_459_799_926_000)
        );
        assert_eq!(
            parse("dd/MM/yyyy hh:mm a", "04/04/2016 07:58 PM"),
            Some(1_459_799_880_000)
        );
        assert_eq!(
            parse("yyyy-MM-dd HH:mm:ss Z", "2016-04-04 21:58:46 +0200"),
            Some(1_459_799_926_000)
        );
        assert_eq!(
            parse("yyyy-MM-dd'T'HH:mm:ss", "2014-10-22T12:00:00"),
            Some(1_413_979_200_000)
        );
    }

    #[test]
    fn lenient_and_prefix() {
        // Month 13 rolls into the next year; text after the match is ignored.
        assert_eq!(
            parse("yyyy-MM-dd", "2015-13-01"),
            parse("yyyy-MM-dd", "2016-01-01")
        );
        assert_eq!(
            parse("yyyy-MM-dd", "2016-04-04 and more"),
            Some(1_459_728_000_000)
        );
        assert_eq!(parse("yyyy-MM-dd", "stillUnparsable"), None);
    }

    #[test]
    fn unsupported_letters_are_named() {
        assert!(
            Pattern::compile("InvalidPattern")
                .unwrap_err()
                .contains("'I'")
        );
        assert!(Pattern::compile("yyyy-'MM").is_err());
    }

    #[test]
    fn out_of_range_fields_do_not_overflow() {
        assert_eq!(parse("yyyy", "9223372036854775807"), None);
        assert_eq!(parse("yyyy-MM", "2016-9223372036854775807"), None);
        assert_eq!(parse("KK a", "9223372036854775807 PM"), None);
        assert_eq!(
            parse(
                "yyyy-MM-dd HH:mm:ss",
                "2016-01-01 9223372036854775807:00:00"
            ),
            None
        );
    }

    #[test]
    fn epoch_seconds_form() {
        assert_eq!(epoch_seconds("1459799926.480"), Some(1_459_799_926_480));
        assert_eq!(epoch_seconds("1.4597999264E9"), Some(1_459_799_926_400));
        assert_eq!(epoch_seconds("-1.0"), None);
        assert_eq!(epoch_seconds("NaN"), None);
        assert_eq!(epoch_seconds("unparsableDate"), None);
    }
}
