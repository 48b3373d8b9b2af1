//! Reading the SQL that `mariadb-dump`/`mysqldump` write, as it streams past.
//!
//! [`Scanner`] splits the dump into statements the way the `mariadb` client does (quotes,
//! backslash escapes, comments, `DELIMITER`), with the content of versioned comments
//! (`/*!50003 ... */`, `/*M!... */`) read as code, as the server reads it. It counts the rows of
//! every `INSERT` (the top-level tuples after `VALUES`) and says what each statement is about,
//! so that a backup knows the rows per table the dump holds, exactly, and a restore can load
//! the tables apart from the views, triggers, routines and events that must follow them.
//!
//! Memory stays bounded: a statement is held back only until it can be classified (its first
//! `(` or 512 bytes of text); the rest of it, however long, passes straight through.
//!
//! What each statement is about is decided from its first tokens, in `statement.rs`.

mod statement;
#[cfg(test)]
mod tests;

pub use statement::Statement;

use statement::{classify, creates_table};
use std::{collections::BTreeMap, io};

/// Longest statement text kept for classifying it.
const PREFIX_CAP: usize = 512;

/// Bytes that mean something inside a row's parentheses: quotes, parentheses, comment starts.
const SPECIAL_IN_ROW: [bool; 256] = {
    let mut table = [false; 256];
    let specials = b"'\"`()-/#";
    let mut i = 0;
    while i < specials.len() {
        table[specials[i] as usize] = true;
        i += 1;
    }
    table
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Code,
    /// Inside a quoted string or identifier; `escaped` after a backslash.
    Quote {
        quote: u8,
        escaped: bool,
    },
    /// After one `-`: a comment if another `-` and a space follow.
    Dash,
    /// After `--`.
    DashDash,
    LineComment,
    /// After `/`.
    Slash,
    /// After `/*`: a versioned comment if `!` or `M!` follows.
    SlashStar,
    /// After `/*M`.
    SlashStarM,
    /// The version number after `/*!`.
    Version,
    BlockComment,
    /// After `*` inside a block comment.
    BlockStar,
    /// The rest of a `DELIMITER` line.
    DelimiterLine,
}

/// Splits a dump into statements, classifies them and counts rows per table.
#[derive(Debug)]
pub struct Scanner {
    lex: Lex,
    /// Inside `/*! ... */`: its content is code.
    versioned: bool,
    /// `*` just seen in versioned code (a `/` ends the comment).
    star: bool,
    delimiter: Vec<u8>,
    /// Bytes of the delimiter matched so far.
    matched: usize,
    /// The statement's text, comments dropped and spaces collapsed, up to [`PREFIX_CAP`].
    text: Vec<u8>,
    /// The statement's text began inside a versioned comment.
    starts_versioned: bool,
    class: Option<Statement>,
    /// Raw bytes of the current statement not yet handed on (it is not classified yet).
    held: Vec<u8>,
    depth: u32,
    word: Vec<u8>,
    values_seen: bool,
    tuples: u64,
    delimiter_line: Vec<u8>,
    rows: BTreeMap<String, u64>,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    #[must_use]
    pub fn new() -> Self {
        Self {
            lex: Lex::Code,
            versioned: false,
            star: false,
            delimiter: b";".to_vec(),
            matched: 0,
            text: Vec::new(),
            starts_versioned: false,
            class: None,
            held: Vec::new(),
            depth: 0,
            word: Vec::new(),
            values_seen: false,
            tuples: 0,
            delimiter_line: Vec::new(),
            rows: BTreeMap::new(),
        }
    }

    /// Rows per table seen so far; a table created without rows counts 0.
    #[must_use]
    pub fn rows(&self) -> &BTreeMap<String, u64> {
        &self.rows
    }

    /// Reads `input`, handing every byte on to `out` with the class of its statement, in order.
    ///
    /// # Errors
    /// Whatever `out` returns.
    pub fn scan(
        &mut self,
        input: &[u8],
        out: &mut dyn FnMut(&Statement, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        // Bytes of `input` from `start` on are not handed on yet.
        let mut start = 0;
        let mut i = 0;
        while i < input.len() {
            i += self.skippable(&input[i..]);
            let Some(&b) = input.get(i) else { break };
            let was_classified = self.class.is_some();
            let ended = self.step(b);
            if !was_classified && self.class.is_some() {
                // Just classified: hand on what was held, and this input up to here.
                let class = self.class.clone().unwrap_or(Statement::Session);
                let held = std::mem::take(&mut self.held);
                if !held.is_empty() {
                    out(&class, &held)?;
                }
                out(&class, &input[start..=i])?;
                start = i + 1;
            }
            if ended {
                let class = self.end_statement();
                let held = std::mem::take(&mut self.held);
                if !held.is_empty() {
                    out(&class, &held)?;
                }
                if start <= i {
                    out(&class, &input[start..=i])?;
                }
                start = i + 1;
            }
            i += 1;
        }
        let rest = &input[start.min(input.len())..];
        if !rest.is_empty() {
            match &self.class {
                Some(class) => out(class, rest)?,
                None => self.held.extend_from_slice(rest),
            }
        }
        Ok(())
    }

    /// Ends the input: what follows the last delimiter (trailing comments) is handed on, and
    /// rows per table are returned.
    ///
    /// # Errors
    /// Whatever `out` returns.
    pub fn finish(
        mut self,
        out: &mut dyn FnMut(&Statement, &[u8]) -> io::Result<()>,
    ) -> io::Result<BTreeMap<String, u64>> {
        if !self.held.is_empty() || self.class.is_some() {
            let class = self.end_statement();
            let held = std::mem::take(&mut self.held);
            if !held.is_empty() {
                out(&class, &held)?;
            }
        }
        Ok(self.rows)
    }

    /// How many bytes at the start of `input` can change nothing: once a statement is
    /// classified and its text kept, only quotes, escapes, parentheses, comment starts and the
    /// delimiter matter inside a row. Most of a dump is rows, so this is where the time goes.
    fn skippable(&self, input: &[u8]) -> usize {
        if self.text.len() < PREFIX_CAP {
            return 0;
        }
        let until = |special: &dyn Fn(u8) -> bool| {
            input
                .iter()
                .position(|&b| special(b))
                .unwrap_or(input.len())
        };
        match self.lex {
            Lex::Quote {
                quote,
                escaped: false,
            } => until(&|b| b == quote || b == b'\\'),
            Lex::Code if self.depth > 0 && self.matched == 0 && !self.versioned => {
                let delimiter = self.delimiter[0];
                until(&|b| SPECIAL_IN_ROW[usize::from(b)] || b == delimiter)
            }
            Lex::LineComment => until(&|b| b == b'\n'),
            Lex::BlockComment => until(&|b| b == b'*'),
            _ => 0,
        }
    }

    /// One byte. Returns true when it ends a statement.
    fn step(&mut self, b: u8) -> bool {
        match self.lex {
            Lex::Code => self.code(b),
            Lex::Quote { quote, escaped } => {
                self.push_text(b);
                if escaped {
                    self.lex = Lex::Quote {
                        quote,
                        escaped: false,
                    };
                } else if b == b'\\' && quote != b'`' {
                    self.lex = Lex::Quote {
                        quote,
                        escaped: true,
                    };
                } else if b == quote {
                    self.lex = Lex::Code;
                }
                false
            }
            Lex::Dash => {
                if b == b'-' {
                    self.lex = Lex::DashDash;
                    false
                } else {
                    self.lex = Lex::Code;
                    self.code_byte(b'-');
                    self.code(b)
                }
            }
            Lex::DashDash => {
                if b.is_ascii_whitespace() || b.is_ascii_control() {
                    self.lex = if b == b'\n' {
                        Lex::Code
                    } else {
                        Lex::LineComment
                    };
                    self.push_space();
                    false
                } else {
                    self.lex = Lex::Code;
                    self.code_byte(b'-');
                    self.code_byte(b'-');
                    self.code(b)
                }
            }
            Lex::LineComment => {
                if b == b'\n' {
                    self.lex = Lex::Code;
                }
                false
            }
            Lex::Slash => {
                if b == b'*' {
                    self.lex = Lex::SlashStar;
                    false
                } else {
                    self.lex = Lex::Code;
                    self.code_byte(b'/');
                    self.code(b)
                }
            }
            Lex::SlashStar => {
                match b {
                    b'!' => self.open_versioned(),
                    b'M' => self.lex = Lex::SlashStarM,
                    b'*' => self.lex = Lex::BlockStar,
                    _ => self.lex = Lex::BlockComment,
                }
                false
            }
            Lex::SlashStarM => {
                if b == b'!' {
                    self.open_versioned();
                } else {
                    self.lex = if b == b'*' {
                        Lex::BlockStar
                    } else {
                        Lex::BlockComment
                    };
                }
                false
            }
            Lex::Version => {
                if b.is_ascii_digit() {
                    false
                } else {
                    self.lex = Lex::Code;
                    self.code(b)
                }
            }
            Lex::BlockComment => {
                if b == b'*' {
                    self.lex = Lex::BlockStar;
                }
                false
            }
            Lex::BlockStar => {
                self.lex = match b {
                    b'/' => {
                        self.push_space();
                        Lex::Code
                    }
                    b'*' => Lex::BlockStar,
                    _ => Lex::BlockComment,
                };
                false
            }
            Lex::DelimiterLine => {
                if b == b'\n' {
                    let line = String::from_utf8_lossy(&self.delimiter_line).into_owned();
                    if let Some(d) = line.split_whitespace().next() {
                        self.delimiter = d.as_bytes().to_vec();
                    }
                    self.delimiter_line.clear();
                    self.lex = Lex::Code;
                    self.class = Some(Statement::Session);
                    true
                } else {
                    self.delimiter_line.push(b);
                    false
                }
            }
        }
    }

    fn open_versioned(&mut self) {
        self.versioned = true;
        self.star = false;
        if self.text.iter().all(u8::is_ascii_whitespace) {
            self.starts_versioned = true;
        }
        self.push_space();
        self.lex = Lex::Version;
    }

    /// A byte of code (outside quotes and comments). Returns true when it ends a statement.
    fn code(&mut self, b: u8) -> bool {
        if self.versioned && self.star && b == b'/' {
            // End of the versioned comment: its `*` was already taken as code; take it back.
            self.versioned = false;
            self.star = false;
            if self.text.last() == Some(&b'*') {
                self.text.pop();
            }
            self.push_space();
            return false;
        }
        self.star = self.versioned && b == b'*';
        // The delimiter ends a statement in code, in versioned comments too (as in the client).
        if b == self.delimiter[self.matched] {
            self.matched += 1;
            if self.matched == self.delimiter.len() {
                self.matched = 0;
                return true;
            }
        } else {
            self.matched = usize::from(b == self.delimiter[0]);
        }
        match b {
            b'\'' | b'"' | b'`' => {
                self.end_word();
                self.push_text(b);
                self.lex = Lex::Quote {
                    quote: b,
                    escaped: false,
                };
            }
            b'-' => self.lex = Lex::Dash,
            b'/' => self.lex = Lex::Slash,
            b'#' => {
                self.end_word();
                self.lex = Lex::LineComment;
            }
            b if (b == b' ' || b == b'\t')
                && !self.versioned
                && self.class.is_none()
                && self.text.eq_ignore_ascii_case(b"DELIMITER") =>
            {
                self.lex = Lex::DelimiterLine;
            }
            _ => self.code_byte(b),
        }
        false
    }

    /// A code byte that is not the start of a quote or comment.
    fn code_byte(&mut self, b: u8) {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' {
            // Only VALUE(S) is looked for: longer words are cut, and never match.
            if self.word.len() < 8 {
                self.word.push(b.to_ascii_uppercase());
            }
            self.push_text(b);
            return;
        }
        self.end_word();
        if b.is_ascii_whitespace() {
            self.push_space();
            return;
        }
        self.push_text(b);
        match b {
            b'(' => {
                if self.depth == 0 {
                    if self.values_seen {
                        self.tuples += 1;
                    }
                    if self.class.is_none() {
                        self.class = classify(&self.text, self.starts_versioned, false);
                    }
                }
                self.depth += 1;
            }
            b')' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }

    fn end_word(&mut self) {
        if self.depth == 0 && (self.word == b"VALUES" || self.word == b"VALUE") {
            self.values_seen = true;
        }
        self.word.clear();
    }

    fn push_text(&mut self, b: u8) {
        if self.text.len() < PREFIX_CAP {
            self.text.push(b);
            if self.text.len() == PREFIX_CAP && self.class.is_none() {
                self.class = classify(&self.text, self.starts_versioned, true);
            }
        }
    }

    fn push_space(&mut self) {
        if !self.text.is_empty() && self.text.last() != Some(&b' ') {
            self.push_text(b' ');
        }
    }

    /// Closes the statement: its rows are added to its table. Returns its class.
    fn end_statement(&mut self) -> Statement {
        self.end_word();
        let class = self
            .class
            .take()
            .or_else(|| classify(&self.text, self.starts_versioned, true))
            .unwrap_or(Statement::Session);
        match &class {
            Statement::Rows(table) => *self.rows.entry(table.clone()).or_insert(0) += self.tuples,
            Statement::Table(table) if creates_table(&self.text) => {
                self.rows.entry(table.clone()).or_insert(0);
            }
            _ => {}
        }
        self.text.clear();
        self.starts_versioned = false;
        self.depth = 0;
        self.values_seen = false;
        self.tuples = 0;
        self.matched = 0;
        self.versioned = false;
        self.star = false;
        class
    }
}
