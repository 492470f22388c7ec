//! `CREATE TABLE` statements in Flink's DDL: a tokenizer and a recursive-descent parser for the
//! part of the language a Kinesis table uses.
//!
//! Covered: backtick or plain identifiers (optionally `catalog.db.table`), physical columns with
//! every Flink type of the issue (nested `ARRAY<…>`, `MAP<…, …>`, `ROW<…>` / `ROW(…)`),
//! `NULL` / `NOT NULL`, `METADATA [FROM 'key'] [VIRTUAL]`, computed columns `name AS expr`,
//! `WATERMARK FOR col AS expr`, `[CONSTRAINT name] PRIMARY KEY (…) NOT ENFORCED`, column and table
//! `COMMENT`s, `PARTITIONED BY (…)` and `WITH ('key' = 'value', …)`. Expressions are kept as
//! written. Errors give the line and column of the token at fault. Types nest at most
//! [`MAX_TYPE_DEPTH`] levels deep.

use std::fmt;

use crate::error::{Error, ErrorKind, clip};
use crate::registry::is_secret;

/// The length of `STRING` and `BYTES`: `VARCHAR` and `VARBINARY` at their longest.
const MAX_LENGTH: u32 = i32::MAX as u32;

/// How many `ARRAY`, `MAP` and `ROW` types may nest inside each other in a column's type.
/// Deeper types are refused, so parsing, checking, printing and dropping a type never run out
/// of stack.
pub const MAX_TYPE_DEPTH: usize = 64;

/// What Debug output prints in place of a secret option value.
const REDACTED: &str = "<redacted>";

/// A Flink SQL type.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataType {
    /// `BOOLEAN`.
    Boolean,
    /// `TINYINT`.
    TinyInt,
    /// `SMALLINT`.
    SmallInt,
    /// `INT`, `INTEGER`.
    Int,
    /// `BIGINT`.
    BigInt,
    /// `FLOAT`.
    Float,
    /// `DOUBLE`, `DOUBLE PRECISION`.
    Double,
    /// `DECIMAL(p, s)` (also `DEC`, `NUMERIC`); default precision 10, scale 0.
    Decimal(u32, u32),
    /// `CHAR(n)`; default length 1.
    Char(u32),
    /// `VARCHAR(n)`; `STRING` is `VARCHAR(2147483647)`.
    Varchar(u32),
    /// `BINARY(n)`; default length 1.
    Binary(u32),
    /// `VARBINARY(n)`; `BYTES` is `VARBINARY(2147483647)`.
    Varbinary(u32),
    /// `DATE`.
    Date,
    /// `TIME(p)`; default precision 0.
    Time(u32),
    /// `TIMESTAMP(p)` without time zone; default precision 6.
    Timestamp(u32),
    /// `TIMESTAMP_LTZ(p)` or `TIMESTAMP(p) WITH LOCAL TIME ZONE`; default precision 6.
    TimestampLtz(u32),
    /// `ARRAY<T>`.
    Array(Box<Field>),
    /// `MAP<K, V>`.
    Map(Box<Field>, Box<Field>),
    /// `ROW<name T, …>`.
    Row(Vec<(String, Field)>),
}

/// A type with its nullability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The type.
    pub data_type: DataType,
    /// Whether NULL is allowed.
    pub nullable: bool,
}

impl fmt::Display for DataType {
    /// The type as Flink prints it (`STRING` and `BYTES` for the longest VARCHAR and VARBINARY).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boolean => f.write_str("BOOLEAN"),
            Self::TinyInt => f.write_str("TINYINT"),
            Self::SmallInt => f.write_str("SMALLINT"),
            Self::Int => f.write_str("INT"),
            Self::BigInt => f.write_str("BIGINT"),
            Self::Float => f.write_str("FLOAT"),
            Self::Double => f.write_str("DOUBLE"),
            Self::Decimal(p, s) => write!(f, "DECIMAL({p}, {s})"),
            Self::Char(n) => write!(f, "CHAR({n})"),
            Self::Varchar(n) if *n == MAX_LENGTH => f.write_str("STRING"),
            Self::Varchar(n) => write!(f, "VARCHAR({n})"),
            Self::Binary(n) => write!(f, "BINARY({n})"),
            Self::Varbinary(n) if *n == MAX_LENGTH => f.write_str("BYTES"),
            Self::Varbinary(n) => write!(f, "VARBINARY({n})"),
            Self::Date => f.write_str("DATE"),
            Self::Time(p) => write!(f, "TIME({p})"),
            Self::Timestamp(p) => write!(f, "TIMESTAMP({p})"),
            Self::TimestampLtz(p) => write!(f, "TIMESTAMP_LTZ({p})"),
            Self::Array(element) => write!(f, "ARRAY<{element}>"),
            Self::Map(key, value) => write!(f, "MAP<{key}, {value}>"),
            Self::Row(fields) => {
                f.write_str("ROW<")?;
                for (i, (name, field)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{}` {field}", name.replace('`', "``"))?;
                }
                f.write_str(">")
            }
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.data_type)?;
        if !self.nullable {
            f.write_str(" NOT NULL")?;
        }
        Ok(())
    }
}

/// What a column holds.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// Decoded from and encoded into record data by the format.
    Physical,
    /// A record field (`METADATA FROM 'key'`).
    Metadata {
        /// The metadata key.
        key: String,
        /// Read-only (`VIRTUAL`).
        is_virtual: bool,
    },
    /// An expression over other columns (`name AS expr`), kept as written.
    Computed {
        /// The expression text.
        expression: String,
    },
}

/// A column of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The name.
    pub name: String,
    /// The type (`None` for computed columns, whose type comes from the expression).
    pub field: Option<Field>,
    /// What it holds.
    pub kind: ColumnKind,
    /// Its comment.
    pub comment: Option<String>,
}

/// A `WATERMARK FOR column AS expression` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watermark {
    /// The rowtime column.
    pub column: String,
    /// The watermark expression, as written.
    pub expression: String,
}

/// A parsed `CREATE TABLE` statement.
///
/// Its Debug output prints secret option values (such as `aws.credentials.basic.secretkey`)
/// as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct CreateTable {
    /// The table name (the last part of a dotted name).
    pub name: String,
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// The watermark, if declared.
    pub watermark: Option<Watermark>,
    /// `PRIMARY KEY (…) NOT ENFORCED` columns, if declared.
    pub primary_key: Option<Vec<String>>,
    /// `PARTITIONED BY` columns.
    pub partitioned_by: Vec<String>,
    /// The `WITH` options, in order.
    pub options: Vec<(String, String)>,
    /// The table comment.
    pub comment: Option<String>,
}

impl fmt::Debug for CreateTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateTable")
            .field("name", &self.name)
            .field("columns", &self.columns)
            .field("watermark", &self.watermark)
            .field("primary_key", &self.primary_key)
            .field("partitioned_by", &self.partitioned_by)
            .field("options", &RedactedOptions(&self.options))
            .field("comment", &self.comment)
            .finish()
    }
}

/// `WITH` option pairs whose secret values print as `<redacted>`.
struct RedactedOptions<'a>(&'a [(String, String)]);

impl fmt::Debug for RedactedOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(key, value)| {
                let value = if is_secret(key) {
                    REDACTED
                } else {
                    value.as_str()
                };
                (key.as_str(), value)
            }))
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Text(String),
    Number(String),
    Symbol(char),
}

#[derive(Clone, Debug)]
struct Spanned {
    token: Token,
    line: usize,
    column: usize,
    /// Byte offsets in the statement.
    start: usize,
    end: usize,
}

fn syntax(line: usize, column: usize, message: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::Syntax,
        None,
        format!("line {line}, column {column}: {}", message.into()),
    )
    .at(line, column)
}

fn tokenize(sql: &str) -> Result<Vec<Spanned>, Error> {
    let mut tokens = Vec::new();
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    // `line_start` is the char index where the current line starts: columns count chars.
    let (mut i, mut line, mut line_start) = (0, 1, 0);
    while i < chars.len() {
        let (at, c) = chars[i];
        let (tl, tc) = (line, i - line_start + 1);
        let next = chars.get(i + 1).map(|&(_, c)| c);
        if c == '\n' {
            line += 1;
            line_start = i + 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i].1 != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            loop {
                let Some(&(_, c2)) = chars.get(i) else {
                    return Err(syntax(tl, tc, "unterminated comment"));
                };
                if c2 == '\n' {
                    line += 1;
                    line_start = i + 1;
                }
                if c2 == '*' && chars.get(i + 1).map(|&(_, c)| c) == Some('/') {
                    i += 2;
                    break;
                }
                i += 1;
            }
        } else if c == '\'' || c == '`' {
            // 'text' with '' for a quote; `identifier` with `` for a backtick.
            let mut value = String::new();
            i += 1;
            loop {
                let Some(&(_, c2)) = chars.get(i) else {
                    let what = if c == '\'' { "string" } else { "identifier" };
                    return Err(syntax(tl, tc, format!("unterminated {what}")));
                };
                if c2 == c {
                    if chars.get(i + 1).map(|&(_, c)| c) == Some(c) {
                        value.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                if c2 == '\n' {
                    line += 1;
                    line_start = i + 1;
                }
                value.push(c2);
                i += 1;
            }
            let end = chars.get(i).map_or(sql.len(), |&(a, _)| a);
            let token = if c == '\'' {
                Token::Text(value)
            } else {
                Token::Quoted(value)
            };
            tokens.push(Spanned {
                token,
                line: tl,
                column: tc,
                start: at,
                end,
            });
        } else if c.is_alphabetic() || c == '_' {
            let begin = i;
            while i < chars.len()
                && (chars[i].1.is_alphanumeric() || chars[i].1 == '_' || chars[i].1 == '$')
            {
                i += 1;
            }
            let end = chars.get(i).map_or(sql.len(), |&(a, _)| a);
            let word: String = chars[begin..i].iter().map(|&(_, c)| c).collect();
            tokens.push(Spanned {
                token: Token::Word(word),
                line: tl,
                column: tc,
                start: at,
                end,
            });
        } else if c.is_ascii_digit() {
            let begin = i;
            while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1 == '.') {
                i += 1;
            }
            let end = chars.get(i).map_or(sql.len(), |&(a, _)| a);
            let number: String = chars[begin..i].iter().map(|&(_, c)| c).collect();
            tokens.push(Spanned {
                token: Token::Number(number),
                line: tl,
                column: tc,
                start: at,
                end,
            });
        } else {
            let end = at + c.len_utf8();
            tokens.push(Spanned {
                token: Token::Symbol(c),
                line: tl,
                column: tc,
                start: at,
                end,
            });
            i += 1;
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    sql: &'a str,
    tokens: Vec<Spanned>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|t| &t.token)
    }

    fn here(&self) -> (usize, usize) {
        match self.tokens.get(self.at).or_else(|| self.tokens.last()) {
            Some(t) if self.at < self.tokens.len() => (t.line, t.column),
            Some(t) => (t.line, t.column + self.sql[t.start..t.end].chars().count()),
            None => (1, 1),
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        let (line, column) = self.here();
        let found = match self.tokens.get(self.at) {
            Some(t) => format!(", found `{}`", clip(&self.sql[t.start..t.end])),
            None => ", found the end of the statement".to_owned(),
        };
        syntax(line, column, format!("{}{found}", message.into()))
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword(keyword);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), Error> {
        if self.keyword(keyword) {
            Ok(())
        } else {
            Err(self.error(format!("expected {keyword}")))
        }
    }

    fn symbol(&mut self, symbol: char) -> bool {
        let found = self.peek() == Some(&Token::Symbol(symbol));
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_symbol(&mut self, symbol: char) -> Result<(), Error> {
        if self.symbol(symbol) {
            Ok(())
        } else {
            Err(self.error(format!("expected `{symbol}`")))
        }
    }

    fn identifier(&mut self) -> Result<String, Error> {
        match self.peek() {
            Some(Token::Word(w) | Token::Quoted(w)) => {
                let name = w.clone();
                self.at += 1;
                Ok(name)
            }
            _ => Err(self.error("expected a name")),
        }
    }

    fn text(&mut self) -> Result<String, Error> {
        match self.peek() {
            Some(Token::Text(t)) => {
                let text = t.clone();
                self.at += 1;
                Ok(text)
            }
            _ => Err(self.error("expected a quoted string")),
        }
    }

    fn number(&mut self) -> Result<u32, Error> {
        match self.peek() {
            Some(Token::Number(n)) => {
                let value = n
                    .parse()
                    .map_err(|_| self.error("expected a whole number"))?;
                self.at += 1;
                Ok(value)
            }
            _ => Err(self.error("expected a number")),
        }
    }

    /// `(n)` or `(n, m)` after a type name, when present.
    fn parameters(&mut self) -> Result<Vec<u32>, Error> {
        let mut values = Vec::new();
        if self.symbol('(') {
            loop {
                values.push(self.number()?);
                if !self.symbol(',') {
                    break;
                }
            }
            self.expect_symbol(')')?;
        }
        Ok(values)
    }

    fn one(&mut self, default: u32, name: &str) -> Result<u32, Error> {
        let values = self.parameters()?;
        match values.as_slice() {
            [] => Ok(default),
            [n] => Ok(*n),
            _ => Err(self.error(format!("{name} takes one parameter"))),
        }
    }

    /// A type and its nullability, inside `depth` nested types of the column `column_name`.
    fn field(&mut self, column_name: &str, depth: usize) -> Result<Field, Error> {
        let data_type = self.data_type(column_name, depth)?;
        let nullable = if self.keyword("NOT") {
            self.expect_keyword("NULL")?;
            false
        } else {
            self.keyword("NULL");
            true
        };
        Ok(Field {
            data_type,
            nullable,
        })
    }

    /// `<` or `(` opening a nested type's parameters: returns the closing symbol.
    fn open_nested(&mut self) -> Result<char, Error> {
        if self.symbol('<') {
            Ok('>')
        } else if self.symbol('(') {
            Ok(')')
        } else {
            Err(self.error("expected `<`"))
        }
    }

    /// A type inside `depth` nested types (`ARRAY`, `MAP`, `ROW`) of the column `column_name`.
    fn data_type(&mut self, column_name: &str, depth: usize) -> Result<DataType, Error> {
        let (line, column) = self.here();
        let name = match self.peek() {
            Some(Token::Word(w)) => w.to_ascii_uppercase(),
            _ => return Err(self.error("expected a type")),
        };
        if matches!(name.as_str(), "ARRAY" | "MAP" | "ROW") && depth >= MAX_TYPE_DEPTH {
            return Err(syntax(
                line,
                column,
                format!(
                    "column `{}`: the type nests deeper than {MAX_TYPE_DEPTH} levels of ARRAY, MAP and ROW",
                    clip(column_name)
                ),
            ));
        }
        self.at += 1;
        Ok(match name.as_str() {
            "BOOLEAN" => DataType::Boolean,
            "TINYINT" => DataType::TinyInt,
            "SMALLINT" => DataType::SmallInt,
            "INT" | "INTEGER" => DataType::Int,
            "BIGINT" => DataType::BigInt,
            "FLOAT" => DataType::Float,
            "DOUBLE" => {
                self.keyword("PRECISION");
                DataType::Double
            }
            "DECIMAL" | "DEC" | "NUMERIC" => match self.parameters()?.as_slice() {
                [] => DataType::Decimal(10, 0),
                [p] => DataType::Decimal(*p, 0),
                [p, s] => DataType::Decimal(*p, *s),
                _ => return Err(syntax(line, column, "DECIMAL takes precision and scale")),
            },
            "CHAR" => DataType::Char(self.one(1, "CHAR")?),
            "VARCHAR" => DataType::Varchar(self.one(1, "VARCHAR")?),
            "STRING" => DataType::Varchar(MAX_LENGTH),
            "BINARY" => DataType::Binary(self.one(1, "BINARY")?),
            "VARBINARY" => DataType::Varbinary(self.one(1, "VARBINARY")?),
            "BYTES" => DataType::Varbinary(MAX_LENGTH),
            "DATE" => DataType::Date,
            "TIME" => {
                let p = self.one(0, "TIME")?;
                if self.keyword("WITHOUT") {
                    self.expect_keyword("TIME")?;
                    self.expect_keyword("ZONE")?;
                }
                DataType::Time(p)
            }
            "TIMESTAMP" => {
                let p = self.one(6, "TIMESTAMP")?;
                if self.keyword("WITH") {
                    self.expect_keyword("LOCAL")?;
                    self.expect_keyword("TIME")?;
                    self.expect_keyword("ZONE")?;
                    DataType::TimestampLtz(p)
                } else {
                    if self.keyword("WITHOUT") {
                        self.expect_keyword("TIME")?;
                        self.expect_keyword("ZONE")?;
                    }
                    DataType::Timestamp(p)
                }
            }
            "TIMESTAMP_LTZ" => DataType::TimestampLtz(self.one(6, "TIMESTAMP_LTZ")?),
            "ARRAY" => {
                let close = self.open_nested()?;
                let element = self.field(column_name, depth + 1)?;
                self.expect_symbol(close)?;
                DataType::Array(Box::new(element))
            }
            "MAP" => {
                let close = self.open_nested()?;
                let key = self.field(column_name, depth + 1)?;
                self.expect_symbol(',')?;
                let value = self.field(column_name, depth + 1)?;
                self.expect_symbol(close)?;
                DataType::Map(Box::new(key), Box::new(value))
            }
            "ROW" => {
                let close = self.open_nested()?;
                let mut fields = Vec::new();
                if !self.symbol(close) {
                    loop {
                        let name = self.identifier()?;
                        let field = self.field(column_name, depth + 1)?;
                        if self.keyword("COMMENT") {
                            self.text()?;
                        }
                        fields.push((name, field));
                        if !self.symbol(',') {
                            break;
                        }
                    }
                    self.expect_symbol(close)?;
                }
                DataType::Row(fields)
            }
            other => {
                return Err(syntax(
                    line,
                    column,
                    format!("unknown type `{}`", clip(other)),
                ));
            }
        })
    }

    /// The text of an expression, up to a top-level `,` or `)` (not consumed).
    fn expression(&mut self) -> Result<String, Error> {
        let first = self.at;
        let mut depth = 0usize;
        while let Some(token) = self.peek() {
            match token {
                Token::Symbol('(') => depth += 1,
                Token::Symbol(')') if depth == 0 => break,
                Token::Symbol(')') => depth -= 1,
                Token::Symbol(',') if depth == 0 => break,
                _ => {}
            }
            self.at += 1;
        }
        if self.at == first {
            return Err(self.error("expected an expression"));
        }
        let (start, end) = (self.tokens[first].start, self.tokens[self.at - 1].end);
        Ok(self.sql[start..end].to_owned())
    }

    fn name_list(&mut self) -> Result<Vec<String>, Error> {
        self.expect_symbol('(')?;
        let mut names = vec![self.identifier()?];
        while self.symbol(',') {
            names.push(self.identifier()?);
        }
        self.expect_symbol(')')?;
        Ok(names)
    }

    fn column(&mut self) -> Result<Column, Error> {
        let name = self.identifier()?;
        if self.keyword("AS") {
            let expression = self.expression()?;
            let comment = if self.keyword("COMMENT") {
                Some(self.text()?)
            } else {
                None
            };
            return Ok(Column {
                name,
                field: None,
                kind: ColumnKind::Computed { expression },
                comment,
            });
        }
        let data_type = self.data_type(&name, 0)?;
        let mut nullable = true;
        let mut kind = ColumnKind::Physical;
        let mut comment = None;
        loop {
            if self.keyword("NOT") {
                self.expect_keyword("NULL")?;
                nullable = false;
            } else if self.keyword("NULL") {
                nullable = true;
            } else if self.keyword("METADATA") {
                let key = if self.keyword("FROM") {
                    self.text()?
                } else {
                    name.clone()
                };
                let is_virtual = self.keyword("VIRTUAL");
                kind = ColumnKind::Metadata { key, is_virtual };
            } else if self.keyword("COMMENT") {
                comment = Some(self.text()?);
            } else {
                break;
            }
        }
        Ok(Column {
            name,
            field: Some(Field {
                data_type,
                nullable,
            }),
            kind,
            comment,
        })
    }
}

/// Parses one `CREATE TABLE` statement (a trailing `;` is allowed).
///
/// # Errors
///
/// An [`Error`] of kind `Syntax` with the line and column of the token at fault.
pub fn parse_create_table(sql: &str) -> Result<CreateTable, Error> {
    let mut p = Parser {
        sql,
        tokens: tokenize(sql)?,
        at: 0,
    };
    p.expect_keyword("CREATE")?;
    p.keyword("TEMPORARY");
    p.expect_keyword("TABLE")?;
    if p.keyword("IF") {
        p.expect_keyword("NOT")?;
        p.expect_keyword("EXISTS")?;
    }
    let mut name = p.identifier()?;
    while p.symbol('.') {
        name = p.identifier()?;
    }
    p.expect_symbol('(')?;
    let mut table = CreateTable {
        name,
        columns: Vec::new(),
        watermark: None,
        primary_key: None,
        partitioned_by: Vec::new(),
        options: Vec::new(),
        comment: None,
    };
    loop {
        if p.keyword("WATERMARK") {
            if table.watermark.is_some() {
                return Err(p.error("a table has one WATERMARK"));
            }
            p.expect_keyword("FOR")?;
            let column = p.identifier()?;
            p.expect_keyword("AS")?;
            let expression = p.expression()?;
            table.watermark = Some(Watermark { column, expression });
        } else if p.is_keyword("PRIMARY") || p.is_keyword("CONSTRAINT") {
            if p.keyword("CONSTRAINT") {
                p.identifier()?;
            }
            p.expect_keyword("PRIMARY")?;
            p.expect_keyword("KEY")?;
            let columns = p.name_list()?;
            p.expect_keyword("NOT")?;
            p.expect_keyword("ENFORCED")?;
            if table.primary_key.replace(columns).is_some() {
                return Err(p.error("a table has one PRIMARY KEY"));
            }
        } else {
            table.columns.push(p.column()?);
        }
        if p.symbol(')') {
            break;
        }
        p.expect_symbol(',')?;
    }
    if p.keyword("COMMENT") {
        table.comment = Some(p.text()?);
    }
    if p.keyword("PARTITIONED") {
        p.expect_keyword("BY")?;
        table.partitioned_by = p.name_list()?;
    }
    p.expect_keyword("WITH")?;
    p.expect_symbol('(')?;
    if !p.symbol(')') {
        loop {
            let key = p.text()?;
            p.expect_symbol('=')?;
            let value = p.text()?;
            table.options.push((key, value));
            if p.symbol(')') {
                break;
            }
            p.expect_symbol(',')?;
        }
    }
    p.symbol(';');
    if p.peek().is_some() {
        return Err(p.error("expected the end of the statement"));
    }
    Ok(table)
}
