//! [`Statement`]: what one statement of a dump is about, decided from the tokens of its text.

/// What one statement of a dump is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// Structure of a table or sequence: `CREATE`/`DROP`/`ALTER`/`LOCK` it, `SETVAL`.
    Table(String),
    /// Rows of a table: `INSERT`/`REPLACE INTO`.
    Rows(String),
    /// A view, trigger, procedure, function or package, or the `ALTER DATABASE` that
    /// mysqldump writes around routines of another collation.
    Object,
    /// An event (scheduled statement): created last, since it may start running at once.
    Event,
    /// Everything else (`SET`, `DELIMITER`, comments, `UNLOCK TABLES`): needed by every part.
    Session,
}
/// One token of a statement's text.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// A bare word, as written.
    Word(String),
    /// A `` `quoted` `` identifier, unquoted.
    Ident(String),
    Str,
    Punct(u8),
}

impl Token {
    fn is(&self, keyword: &str) -> bool {
        matches!(self, Self::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn name(&self) -> Option<String> {
        match self {
            Self::Word(w) | Self::Ident(w) => Some(w.clone()),
            _ => None,
        }
    }
}

fn tokens(text: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b.is_ascii_whitespace() {
            i += 1;
        } else if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 {
            let s = i;
            while i < text.len()
                && (text[i].is_ascii_alphanumeric()
                    || text[i] == b'_'
                    || text[i] == b'$'
                    || text[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Token::Word(
                String::from_utf8_lossy(&text[s..i]).into_owned(),
            ));
        } else if b == b'`' {
            let mut name = Vec::new();
            i += 1;
            while i < text.len() {
                if text[i] == b'`' {
                    if text.get(i + 1) == Some(&b'`') {
                        name.push(b'`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                name.push(text[i]);
                i += 1;
            }
            out.push(Token::Ident(String::from_utf8_lossy(&name).into_owned()));
        } else if b == b'\'' || b == b'"' {
            i += 1;
            while i < text.len() && text[i] != b {
                if text[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(Token::Str);
        } else {
            out.push(Token::Punct(b));
            i += 1;
        }
    }
    out
}

/// `CREATE [OR REPLACE] TABLE ...`: the table exists in the dump even when no row follows.
pub(super) fn creates_table(text: &[u8]) -> bool {
    let t = tokens(text);
    t.first().is_some_and(|x| x.is("CREATE")) && t.iter().skip(1).take(4).any(|x| x.is("TABLE"))
}

/// The table named at `t[i..]`: `name` or `db`.`name` (the last part counts).
fn name_at(t: &[Token], mut i: usize) -> Option<String> {
    let mut name = t.get(i)?.name()?;
    while t.get(i + 1) == Some(&Token::Punct(b'.')) {
        i += 2;
        name = t.get(i)?.name()?;
    }
    Some(name)
}

/// Skips `IF EXISTS` / `IF NOT EXISTS` at `t[i..]`.
fn skip_if(t: &[Token], mut i: usize) -> usize {
    if t.get(i).is_some_and(|x| x.is("IF")) {
        i += 1;
        if t.get(i).is_some_and(|x| x.is("NOT")) {
            i += 1;
        }
        if t.get(i).is_some_and(|x| x.is("EXISTS")) {
            i += 1;
        }
    }
    i
}

/// What a statement is about, from its text; `None` while more text is needed (unless `done`).
pub(super) fn classify(text: &[u8], starts_versioned: bool, done: bool) -> Option<Statement> {
    let t = tokens(text);
    let decided = classify_tokens(&t, starts_versioned);
    if decided.is_none() && done {
        return Some(Statement::Session);
    }
    decided
}

fn classify_tokens(t: &[Token], starts_versioned: bool) -> Option<Statement> {
    let first = t.first()?;
    let word = |i: usize| t.get(i);
    if first.is("INSERT") || first.is("REPLACE") {
        let into = t.iter().position(|x| x.is("INTO"))?;
        return name_at(t, into + 1).map(Statement::Rows);
    }
    if first.is("CREATE") || first.is("DROP") || first.is("ALTER") {
        // The kind of object: the first of these words (definers and options come before it).
        let kinds = [
            "TABLE",
            "SEQUENCE",
            "VIEW",
            "TRIGGER",
            "PROCEDURE",
            "FUNCTION",
            "PACKAGE",
            "EVENT",
            "DATABASE",
            "SCHEMA",
            "INDEX",
            "USER",
            "ROLE",
            "SERVER",
            "TABLESPACE",
            "LOGFILE",
        ];
        let (pos, kind) = t.iter().enumerate().skip(1).find_map(|(i, x)| match x {
            Token::Word(w) => kinds
                .iter()
                .find(|k| w.eq_ignore_ascii_case(k))
                .map(|k| (i, *k)),
            _ => None,
        })?;
        return Some(match kind {
            // mysqldump stands in for a view with a table in a versioned comment.
            "TABLE" if starts_versioned && !first.is("ALTER") => Statement::Object,
            "TABLE" | "SEQUENCE" => Statement::Table(name_at(t, skip_if(t, pos + 1))?),
            "VIEW" | "TRIGGER" | "PROCEDURE" | "FUNCTION" | "PACKAGE" => Statement::Object,
            "DATABASE" | "SCHEMA" if first.is("ALTER") => Statement::Object,
            "EVENT" => Statement::Event,
            _ => Statement::Session,
        });
    }
    if first.is("LOCK") && word(1).is_some_and(|x| x.is("TABLES") || x.is("TABLE")) {
        return name_at(t, 2).map(Statement::Table);
    }
    if (first.is("DO") || first.is("SELECT"))
        && word(1).is_some_and(|x| x.is("SETVAL"))
        && word(2) == Some(&Token::Punct(b'('))
    {
        return name_at(t, 3).map(Statement::Table);
    }
    Some(Statement::Session)
}
