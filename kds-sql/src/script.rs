//! Scripts: statements split at their semicolons (not those inside strings, quoted names or
//! comments), and Flink's `CREATE TABLE … WITH (…)` told apart from what DataFusion runs.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::error::{Error, ErrorKind};

/// One statement of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// Its text, without the semicolon that ends it.
    pub text: String,
    /// The line of the script it starts on (from 1).
    pub line: u64,
}

/// Splits `script` into its statements at the semicolons that end them; empty statements
/// (and a script of comments only) give none.
///
/// # Errors
///
/// [`ErrorKind::Syntax`] when the script does not tokenize: a string, quoted name or comment
/// left open (the message names its line and column).
pub fn split_statements(script: &str) -> Result<Vec<Statement>, Error> {
    let tokens = tokenize(script)?;
    let lines = LineIndex::new(script);
    let mut statements = Vec::new();
    let mut start = 0usize;
    let mut first: Option<u64> = None;
    for token in &tokens {
        match &token.token {
            Token::SemiColon => {
                let end = lines.offset(token.span.start.line, token.span.start.column);
                if let Some(line) = first.take() {
                    statements.push(Statement {
                        text: script[start..end].trim().to_owned(),
                        line,
                    });
                }
                start = end + 1;
            }
            Token::Whitespace(_) | Token::EOF => {}
            _ => {
                first.get_or_insert(token.span.start.line);
            }
        }
    }
    if let Some(line) = first {
        statements.push(Statement {
            text: script[start..].trim().to_owned(),
            line,
        });
    }
    Ok(statements)
}

/// Whether `statement` is Flink's `CREATE [TEMPORARY] TABLE … WITH (…)`, which DataFusion
/// does not run and kds-table parses: a `CREATE TABLE` with a `WITH (` outside parentheses
/// and no `AS` query.
pub(crate) fn is_flink_create_table(statement: &str) -> bool {
    let Ok(tokens) = tokenize(statement) else {
        return false;
    };
    let words: Vec<&Token> = tokens
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF))
        .collect();
    let keyword = |token: &Token, keyword: Keyword| matches!(token, Token::Word(word) if word.keyword == keyword && word.quote_style.is_none());
    let mut at = 0;
    if !words.first().is_some_and(|t| keyword(t, Keyword::CREATE)) {
        return false;
    }
    at += 1;
    if words
        .get(at)
        .is_some_and(|t| keyword(t, Keyword::TEMPORARY))
    {
        at += 1;
    }
    if !words.get(at).is_some_and(|t| keyword(t, Keyword::TABLE)) {
        return false;
    }
    let mut depth = 0i64;
    let mut with = false;
    for (i, token) in words.iter().enumerate().skip(at + 1) {
        match token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && keyword(token, Keyword::AS) => return false,
            _ if depth == 0
                && keyword(token, Keyword::WITH)
                && matches!(words.get(i + 1), Some(Token::LParen)) =>
            {
                with = true;
            }
            _ => {}
        }
    }
    with
}

/// Flink's dynamic table options: `table /*+ OPTIONS('key' = 'value', …) */` in a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableHint {
    /// The table as written (its quote style kept apart).
    pub(crate) table: String,
    /// Whether the name was quoted (and so kept as written).
    pub(crate) quoted: bool,
    /// The options, in order.
    pub(crate) options: Vec<(String, String)>,
    /// The name the statement now uses for the table with these options.
    pub(crate) placeholder: String,
}

/// Takes the `/*+ OPTIONS(…) */` hints out of `statement`: the statement with each hinted
/// table renamed to its hint's placeholder, and the hints. `None` when it has none.
///
/// # Errors
///
/// [`ErrorKind::Syntax`] for a hint that is not `OPTIONS('key' = 'value', …)` or that
/// follows no table name.
pub(crate) fn take_hints(
    statement: &str,
    mut placeholder: impl FnMut() -> String,
) -> Result<Option<(String, Vec<TableHint>)>, Error> {
    let tokens = tokenize(statement)?;
    let lines = LineIndex::new(statement);
    // Each token's text runs from its start to the next token's start.
    let starts: Vec<usize> = tokens
        .iter()
        .map(|t| lines.offset(t.span.start.line, t.span.start.column))
        .chain(std::iter::once(statement.len()))
        .collect();
    let mut hints = Vec::new();
    let mut replacements: Vec<(usize, usize, String)> = Vec::new();
    for i in 0..tokens.len() {
        let Token::Whitespace(Whitespace::MultiLineComment(comment)) = &tokens[i].token else {
            continue;
        };
        let Some(body) = comment.trim_start().strip_prefix('+') else {
            continue;
        };
        let location = tokens[i].span.start;
        let at = format!("line {}, column {}", location.line, location.column);
        let options = parse_options_hint(body)
            .map_err(|problem| Error::new(ErrorKind::Syntax, format!("hint at {at}: {problem}")))?;
        let name_at = (0..i)
            .rev()
            .find(|&j| !matches!(tokens[j].token, Token::Whitespace(_)));
        let Some(Token::Word(word)) = name_at.map(|j| &tokens[j].token) else {
            return Err(Error::new(
                ErrorKind::Syntax,
                format!("hint at {at}: it follows no table name"),
            ));
        };
        let name_at = name_at.expect("found above");
        let name = placeholder();
        hints.push(TableHint {
            table: word.value.clone(),
            quoted: word.quote_style.is_some(),
            options,
            placeholder: name.clone(),
        });
        // Only the name and the hint change: the rest of the statement stays as written.
        replacements.push((starts[name_at], starts[name_at + 1], name));
        replacements.push((starts[i], starts[i + 1], " ".to_owned()));
    }
    if hints.is_empty() {
        return Ok(None);
    }
    let mut text = statement.to_owned();
    for (start, end, with) in replacements.into_iter().rev() {
        text.replace_range(start..end, &with);
    }
    Ok(Some((text, hints)))
}

/// `OPTIONS('key' = 'value', …)` after the `+` of a hint.
fn parse_options_hint(body: &str) -> Result<Vec<(String, String)>, String> {
    let tokens = tokenize(body).map_err(|e| e.to_string())?;
    let mut tokens = tokens
        .into_iter()
        .map(|t| t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF));
    match tokens.next() {
        Some(Token::Word(word)) if word.value.eq_ignore_ascii_case("OPTIONS") => {}
        other => {
            return Err(format!(
                "expected OPTIONS('key' = 'value', …), found {}",
                other.map_or("nothing".to_owned(), |t| t.to_string())
            ));
        }
    }
    if tokens.next() != Some(Token::LParen) {
        return Err("expected `(` after OPTIONS".to_owned());
    }
    let mut options = Vec::new();
    loop {
        let key = match tokens.next() {
            Some(Token::SingleQuotedString(key)) => key,
            Some(Token::RParen) if options.is_empty() => break,
            other => {
                return Err(format!(
                    "expected a quoted option key, found {}",
                    other.map_or("nothing".to_owned(), |t| t.to_string())
                ));
            }
        };
        if tokens.next() != Some(Token::Eq) {
            return Err(format!("expected `=` after '{key}'"));
        }
        let Some(Token::SingleQuotedString(value)) = tokens.next() else {
            return Err(format!("expected a quoted value for '{key}'"));
        };
        options.push((key, value));
        match tokens.next() {
            Some(Token::Comma) => {}
            Some(Token::RParen) => break,
            other => {
                return Err(format!(
                    "expected `,` or `)`, found {}",
                    other.map_or("nothing".to_owned(), |t| t.to_string())
                ));
            }
        }
    }
    if let Some(extra) = tokens.next() {
        return Err(format!("unexpected {extra} after OPTIONS(…)"));
    }
    Ok(options)
}

fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>, Error> {
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| Error::new(ErrorKind::Syntax, "the script does not tokenize").with_source(e))
}

/// From a line and column (both from 1, columns counted in characters) to a byte offset.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    fn offset(&self, line: u64, column: u64) -> usize {
        let line = usize::try_from(line).unwrap_or(usize::MAX).max(1);
        let start = self
            .starts
            .get(line - 1)
            .copied()
            .unwrap_or(self.text.len());
        let column = usize::try_from(column).unwrap_or(usize::MAX).max(1);
        self.text[start..]
            .char_indices()
            .nth(column - 1)
            .map_or(self.text.len(), |(i, _)| start + i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_semicolons_outside_strings_names_and_comments() {
        let script = "-- a comment; not a statement\nSELECT 'a;b' AS \"x;y\";\n\n  /* ; */ SELECT `c;d` FROM t ;;\nINSERT INTO t VALUES (1)";
        let statements = split_statements(script).unwrap();
        let texts: Vec<(&str, u64)> = statements
            .iter()
            .map(|s| (s.text.as_str(), s.line))
            .collect();
        assert_eq!(
            texts,
            [
                ("-- a comment; not a statement\nSELECT 'a;b' AS \"x;y\"", 2),
                ("/* ; */ SELECT `c;d` FROM t", 4),
                ("INSERT INTO t VALUES (1)", 5),
            ]
        );
    }

    #[test]
    fn multibyte_text_before_a_semicolon_keeps_offsets_right() {
        let statements = split_statements("SELECT 'é€😀'; SELECT 2").unwrap();
        assert_eq!(statements[0].text, "SELECT 'é€😀'");
        assert_eq!(statements[1].text, "SELECT 2");
    }

    #[test]
    fn comments_only_is_no_statement() {
        assert!(
            split_statements("  -- nothing\n/* at all */ ;")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_open_string_is_a_syntax_error() {
        let error = split_statements("SELECT 'open").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Syntax);
    }

    #[test]
    fn hints_name_their_tables_and_leave_the_rest_of_the_statement() {
        let mut n = 0;
        let mut numbered = || {
            n += 1;
            format!("__kds_hinted_{n}")
        };
        let (text, hints) = take_hints(
            "SELECT a, count(*) FROM KinesisTable /*+ OPTIONS('scan.stream.initpos'='TRIM_HORIZON', 'k' = 'it''s') */ t\n  JOIN \"Other\" /*+ OPTIONS() */ ON 'x;/*+ no */' = t.b AND 'it''s' <> 'b' GROUP BY a",
            &mut numbered,
        )
        .unwrap()
        .unwrap();
        // Strings stay as written: a quote doubled inside one is not undone.
        assert_eq!(
            text,
            "SELECT a, count(*) FROM __kds_hinted_1   t\n  JOIN __kds_hinted_2   ON 'x;/*+ no */' = t.b AND 'it''s' <> 'b' GROUP BY a"
        );
        assert_eq!(
            hints,
            [
                TableHint {
                    table: "KinesisTable".into(),
                    quoted: false,
                    options: vec![
                        ("scan.stream.initpos".into(), "TRIM_HORIZON".into()),
                        ("k".into(), "it's".into())
                    ],
                    placeholder: "__kds_hinted_1".into(),
                },
                TableHint {
                    table: "Other".into(),
                    quoted: true,
                    options: vec![],
                    placeholder: "__kds_hinted_2".into(),
                },
            ]
        );
        assert_eq!(
            take_hints("SELECT 1 /* not a hint */", String::new).unwrap(),
            None
        );
    }

    #[test]
    fn malformed_hints_are_syntax_errors_that_say_where() {
        for (sql, problem) in [
            (
                "SELECT * FROM t /*+ PROPERTIES('a'='b') */",
                "expected OPTIONS",
            ),
            (
                "SELECT * FROM t /*+ OPTIONS('a' 'b') */",
                "expected `=` after 'a'",
            ),
            (
                "SELECT * FROM t /*+ OPTIONS('a'='b' */",
                "expected `,` or `)`",
            ),
            ("/*+ OPTIONS('a'='b') */ SELECT 1", "follows no table name"),
            (
                "SELECT * FROM (SELECT 1) /*+ OPTIONS('a'='b') */",
                "follows no table name",
            ),
        ] {
            let error = take_hints(sql, String::new).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Syntax);
            let text = error.to_string();
            assert!(
                text.contains(problem) && text.contains("line 1"),
                "{sql}: {text}"
            );
        }
    }

    #[test]
    fn tells_flink_create_table_apart() {
        let flink = [
            "CREATE TABLE t (a INT) WITH ('connector' = 'kinesis')",
            "create temporary table `t` (a INT, b AS a + 1) PARTITIONED BY (a) with ('k' = 'v')",
            "CREATE TABLE t (\n `ts` TIMESTAMP(3) METADATA FROM 'timestamp' VIRTUAL\n)\nWITH (\n'a'='b')",
        ];
        for sql in flink {
            assert!(is_flink_create_table(sql), "{sql}");
        }
        let other = [
            "CREATE TABLE t (a INT)",
            "CREATE TABLE t AS WITH x (a) AS (SELECT 1) SELECT * FROM x",
            "CREATE EXTERNAL TABLE t (a INT) STORED AS KINESIS LOCATION 'kinesis://s'",
            "SELECT * FROM t WHERE a IN (SELECT 1)",
            "CREATE VIEW v AS SELECT 1",
        ];
        for sql in other {
            assert!(!is_flink_create_table(sql), "{sql}");
        }
    }
}
