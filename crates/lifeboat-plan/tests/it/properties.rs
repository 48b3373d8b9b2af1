//! Property tests of `parse`: it never panics, every error is shaped the way `PlanError`
//! documents it, and no error repeats a secret written in the plan.
//!
//! The inputs are valid plans broken at random (lines deleted, duplicated, swapped, values
//! retyped, keys misspelt, keys and tables inserted, characters replaced, the text cut short),
//! plus arbitrary text. Valid plans reach every layer (syntax, secrets, variables, shapes,
//! serde, resolution); arbitrary text mostly stops at the TOML syntax check.

use std::path::Path;

use lifeboat_plan::PlanError;
use proptest::{
    prelude::*,
    sample::{Index, select},
    test_runner::TestCaseError,
};

use crate::MINIMAL;

/// The secret planted in plans below: distinctive, so that finding it in a message can only
/// mean the message echoes the plan.
const SECRET: &str = "pl4nt3d-S3CR3T-value";

/// The example from the design document: every asset type, two repositories, a scenario.
const DESIGN: &str = include_str!("../data/design-example.toml");

/// The other syntax and keys the design example lacks: dotted keys, literal strings, arrays
/// over several lines, arrays of tables, an S3 repository, schedules, anomaly thresholds.
const FULL: &str = r#"version = 1

[plan]
name = "shop"
rpo = "2h"

[repositories.primary]
url = "backups/repo"
password-file = "/etc/lifeboat/pw"

[repositories.s3]
url = "s3://shop-backups/lifeboat?endpoint=http://127.0.0.1:9000&region=us-east-1"
password-env = "LIFEBOAT_PASSWORD"
access-key-id-env = "AWS_ACCESS_KEY_ID"
secret-access-key-env = "AWS_SECRET_ACCESS_KEY"
copy-from = "primary"

[assets.db]
type = "postgres"
url = "postgresql://shop@db.internal:5432/shop"
password-env = "PGPASSWORD"
jobs = 2
retention.daily = 7
retention.weekly = 4
anomaly = { below = 0.5, above = 2.0 }

[assets.cache]
type = "redis"
url = "redis://cache:6379"
priority = "P1"

[assets.uploads]
type = "files"
paths = [
  "/srv/uploads",
  'media',
]
exclude = ["**/cache/**"]
one-file-system = true
retention = { last = 3, within = "2d" }

[notify.hook]
type = "webhook"
url = "https://hooks.example.com/lifeboat"
on = ["failure"]

[schedules]
time-zone = "UTC"
verify = "0 3 * * *"
verify-read-data = "5%"

[[scenarios]]
name = "restore-db"

[[scenarios.steps]]
restore = "db"

[[scenarios.steps]]
wait = "curl -fs http://localhost/health"
timeout = "5m"
interval = "10s"

[[scenarios.steps]]
confirm = "is the shop up?"
"#;

/// The valid plans every mutation starts from.
const BASES: [&str; 3] = [MINIMAL, DESIGN, FULL];

/// Plan file paths: the crate prints them as given, spaces and non-ASCII included; relative
/// ones resolve against the working directory.
const PATHS: [&str; 4] = [
    "/plans/lifeboat.toml",
    "/srv/ops team/lifeboat.toml",
    "/tmp/ünïcødé/plan.toml",
    "relative/lifeboat.toml",
];

/// Values of every TOML type, and strings each layer looks at (durations, cron, URLs, `${}`).
const VALUES: &[&str] = &[
    "1",
    "-7",
    "0",
    "3.25",
    "inf",
    "nan",
    "99999999999999999999",
    "true",
    "\"text\"",
    "''",
    "[]",
    "[1, \"two\"]",
    "{ }",
    "{ a = 1 }",
    "[{ run = \"x\" }]",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "\"${LIFEBOAT_PROPTEST_SURELY_UNSET}\"",
    "\"${UNTERMINATED\"",
    "\"$${literal}\"",
    "\"0 */6 * * *\"",
    "\"4h\"",
    "\"P0\"",
    "\"/abs/path\"",
    "\"postgres://u@h/db\"",
    "\"s3://b/p?region=x\"",
    "\"web\"",
];

/// Keys the plan knows, to misspell and to insert where they do not belong.
const KEYS: &str = "version plan name rpo rto repositories url password-env password-file \
     password-command copy-from assets type priority schedule retention daily weekly \
     monthly yearly within last paths exclude one-file-system redact checks notify on \
     url-env scenarios steps run restore check http expect wait timeout schedules \
     time-zone jitter verify anomaly below above jobs";

/// Table headers to insert: duplicates, unknown tables, tables in the wrong place.
const HEADERS: &[&str] = &[
    "[plan]",
    "[assets.extra]",
    "[assets.db.retention]",
    "[[scenarios]]",
    "[[scenarios.steps]]",
    "[notify.x]",
    "[repositories.r]",
    "[schedules]",
    "[bogus]",
    "[assets]",
];

/// Characters that change the meaning of TOML most: structure, quoting, escapes, references.
const STRUCTURAL: &[char] = &[
    '[', ']', '{', '}', '=', '"', '\'', '#', ',', '.', '\n', '\\', ' ', '$', '@', ':', '-',
];

/// One way of misspelling a key, as a user would.
#[derive(Debug, Clone, Copy)]
enum Slip {
    Drop,
    SwapAdjacent,
    Double,
    Uppercase,
    DashUnderscore,
    Plural,
}

/// One random edit of a plan's text.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// The value of a `key = value` line replaced by one of [`VALUES`].
    RetypeValue(Index, &'static str),
    /// The key of a `key = value` line, or the last part of a `[table]` header, misspelt.
    MisspellKey(Index, Slip, Index),
    InsertKey(Index, String, &'static str),
    InsertHeader(Index, &'static str),
    ReplaceChar(Index, char),
    /// Cut at a byte offset (moved back to a character boundary: `parse` takes `&str`).
    Truncate(Index),
}

fn slip() -> impl Strategy<Value = Slip> {
    select(vec![
        Slip::Drop,
        Slip::SwapAdjacent,
        Slip::Double,
        Slip::Uppercase,
        Slip::DashUnderscore,
        Slip::Plural,
    ])
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let key = prop_oneof![
        select(KEYS.split_whitespace().collect::<Vec<_>>()).prop_map(str::to_owned),
        "[a-z][a-z0-9_-]{0,10}",
        // Keys that need quoting, and Unicode.
        "\"[ a-zé.]{1,6}\"",
    ];
    let replacement = prop_oneof![3 => select(STRUCTURAL), 1 => any::<char>()];
    // Duplicated lines and headers mostly stop at TOML's duplicate-key check, so they are
    // drawn less often than edits that reach the later layers.
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (any::<Index>(), select(VALUES)).prop_map(|(i, v)| Mutation::RetypeValue(i, v)),
        3 => (any::<Index>(), slip(), any::<Index>())
            .prop_map(|(i, s, at)| Mutation::MisspellKey(i, s, at)),
        3 => (any::<Index>(), key, select(VALUES))
            .prop_map(|(i, k, v)| Mutation::InsertKey(i, k, v)),
        1 => (any::<Index>(), select(HEADERS)).prop_map(|(i, h)| Mutation::InsertHeader(i, h)),
        2 => (any::<Index>(), replacement).prop_map(|(i, c)| Mutation::ReplaceChar(i, c)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// A misspelling of `key` (never empty: an empty key is a different mistake).
fn misspell(key: &str, slip: Slip, at: Index) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.is_empty() {
        return "x".to_owned();
    }
    let i = at.index(chars.len());
    let mut out = chars.clone();
    match slip {
        Slip::Drop if chars.len() > 1 => {
            out.remove(i);
        }
        Slip::SwapAdjacent if chars.len() > 1 => {
            out.swap(i.min(chars.len() - 2), i.min(chars.len() - 2) + 1);
        }
        Slip::Double | Slip::Drop | Slip::SwapAdjacent => out.insert(i, chars[i]),
        Slip::Uppercase => return key.to_uppercase(),
        Slip::DashUnderscore => {
            return if key.contains('-') {
                key.replace('-', "_")
            } else {
                key.replace('_', "-") + "_x"
            };
        }
        Slip::Plural => return format!("{key}s"),
    }
    out.into_iter().collect()
}

/// `text` with `mutation` applied.
fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let n = lines.len();
    match mutation {
        Mutation::DeleteLine(i) => {
            lines.remove(i.index(n));
        }
        Mutation::DuplicateLine(i) => {
            let i = i.index(n);
            lines.insert(i, lines[i].clone());
        }
        Mutation::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
        Mutation::RetypeValue(i, value) => {
            let line = &mut lines[i.index(n)];
            if let Some((key, _)) = line.split_once('=') {
                *line = format!("{key}= {value}");
            }
        }
        Mutation::MisspellKey(i, slip, at) => {
            let line = &mut lines[i.index(n)];
            let trimmed = line.trim_start();
            if let Some(header) = trimmed.strip_prefix('[') {
                // The last part of the table name: `[assets.db]` -> `[assets.dbb]`; a comment
                // after the header stays.
                let (open, header) = match header.strip_prefix('[') {
                    Some(h) => ("[[", h),
                    None => ("[", header),
                };
                let (name, rest) = header.split_once(']').unwrap_or((header, ""));
                let (head, last) = name.rsplit_once('.').unwrap_or(("", name));
                let wrong = misspell(last, *slip, *at);
                let name = if head.is_empty() {
                    wrong
                } else {
                    format!("{head}.{wrong}")
                };
                *line = format!("{open}{name}]{rest}");
            } else if let Some((key, value)) = line.split_once('=') {
                let key = key.trim();
                if !key.is_empty() {
                    *line = format!("{} ={value}", misspell(key, *slip, *at));
                }
            }
        }
        Mutation::InsertKey(i, key, value) => {
            lines.insert(i.index(n + 1), format!("{key} = {value}"));
        }
        Mutation::InsertHeader(i, header) => lines.insert(i.index(n + 1), (*header).to_owned()),
        Mutation::ReplaceChar(i, c) => {
            let joined = lines.join("\n");
            let chars: Vec<char> = joined.chars().collect();
            if chars.is_empty() {
                return c.to_string();
            }
            let at = i.index(chars.len());
            return chars
                .iter()
                .enumerate()
                .map(|(j, &old)| if j == at { *c } else { old })
                .collect();
        }
        Mutation::Truncate(i) => {
            let joined = lines.join("\n");
            let mut end = i.index(joined.len() + 1);
            while !joined.is_char_boundary(end) {
                end -= 1;
            }
            return joined[..end].to_owned();
        }
    }
    lines.join("\n")
}

/// A valid plan broken by one to four mutations, and the path it claims to be read from.
fn broken_plan() -> impl Strategy<Value = (String, &'static str)> {
    (
        select(&BASES[..]),
        prop::collection::vec(mutation(), 1..=4),
        select(&PATHS[..]),
    )
        .prop_map(|(base, mutations, path)| {
            let text = mutations.iter().fold(base.to_owned(), |t, m| apply(&t, m));
            (text, path)
        })
}

/// Text made of TOML's own tokens: unlike arbitrary strings it often gets past the syntax
/// check, into the layers that read keys and values.
fn toml_soup() -> impl Strategy<Value = String> {
    let token = select(vec![
        "version",
        "plan",
        "assets",
        "type",
        "url",
        "paths",
        "name",
        "db",
        "=",
        " = ",
        "\n",
        "[",
        "]",
        "[[",
        "]]",
        "{",
        "}",
        ".",
        ",",
        "\"",
        "'",
        "\"\"\"",
        "1",
        "-1",
        "1.5",
        "true",
        "\"files\"",
        "\"postgres\"",
        "\"/srv\"",
        "[\"/a\"]",
        "\"x\"",
        "#",
        "\\",
        "${",
        "$",
        "password",
        "=\"",
        "\"\n",
        " ",
        "é",
        "\t",
        "\r\n",
    ]);
    prop::collection::vec(token, 0..60).prop_map(|tokens| tokens.concat())
}

/// `PlanError`'s documented rendering, rebuilt from its public fields.
fn render(e: &PlanError) -> String {
    let mut out = e.file.display().to_string();
    if let Some(line) = e.line {
        out.push_str(&format!(":{line}"));
        if let Some(column) = e.column {
            out.push_str(&format!(":{column}"));
        }
    }
    if !e.key_path.is_empty() {
        out.push_str(&format!(": {}", e.key_path));
    }
    out.push_str(&format!(": {}", e.message));
    if let Some(hint) = &e.hint {
        out.push_str(&format!("\n  hint: {hint}"));
    }
    out
}

/// What `PlanError` promises about every error of `parse(text, path)`:
/// - it names `path`, and is displayed as `{file}:{line}:{column}: {key_path}: {message}`
///   with a `\n  hint: {hint}` line when there is a hint, leaving out only unknown parts;
/// - line and column come together and lie inside `text`;
/// - only syntax errors (`invalid TOML: ...`) lack a key path, and syntax errors have none;
/// - only a missing top-level key lacks a line: then the key path is that one key, and the
///   document really has no such key;
/// - an unknown key (or a key that may not hold a secret) is reported where the key is
///   written: the text at line:column starts with the key's name.
fn check_error(e: &PlanError, text: &str, path: &str) -> Result<(), TestCaseError> {
    let shown = e.to_string();
    prop_assert_eq!(&e.file, Path::new(path));
    prop_assert_eq!(&shown, &render(e));
    let file = Path::new(path).display().to_string();
    prop_assert!(shown.starts_with(&file), "file not first: {shown}");
    prop_assert!(!e.message.is_empty());
    // One line of message, then at most one line of hint: the format callers parse.
    prop_assert!(
        !e.message.contains('\n'),
        "message on several lines: {shown}"
    );
    prop_assert!(
        e.hint
            .as_deref()
            .is_none_or(|h| !h.contains('\n') && !h.is_empty())
    );
    prop_assert_eq!(e.line.is_some(), e.column.is_some(), "{}", shown);

    let syntax = e.message.starts_with("invalid TOML: ");
    prop_assert_eq!(
        e.key_path.is_empty(),
        syntax,
        "key path vs syntax error: {}",
        shown
    );

    let text_lines: Vec<&str> = text.split('\n').collect();
    match (e.line, e.column) {
        (Some(line), Some(column)) => {
            prop_assert!(
                line >= 1 && line <= text_lines.len(),
                "line out of the text: {shown}"
            );
            let chars = text_lines[line - 1].chars().count();
            prop_assert!(
                column >= 1 && column <= chars + 1,
                "column out of the line: {shown}"
            );
            let position = format!("{file}:{line}:{column}: ");
            prop_assert!(shown.starts_with(&position), "not {position}: {shown}");
            // toml's private field for dates never reaches the user as a key.
            prop_assert!(
                !e.key_path.ends_with(TOML_DATETIME_FIELD),
                "toml's private field named: {shown}"
            );
            let about_key =
                e.message.starts_with("unknown key") || e.message.contains("may not be written");
            if about_key {
                let at: String = text_lines[line - 1].chars().skip(column - 1).collect();
                check_points_at_key(&e.key_path, &at, &shown)?;
            }
        }
        _ => {
            // No position: a missing top-level key, which the document indeed lacks.
            prop_assert!(!syntax, "syntax error without a position: {shown}");
            let bare = e
                .key_path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            prop_assert!(bare, "no line, but not a top-level key: {shown}");
            let table: toml::Table = text
                .parse()
                .map_err(|err| TestCaseError::fail(format!("{shown}: toml says {err}")))?;
            prop_assert!(
                !table.contains_key(&e.key_path),
                "key is there, but no line: {shown}"
            );
        }
    }
    Ok(())
}

/// The field name under which the toml crate hands a date or time to serde; it is no key of
/// any plan, so it should never appear in a key path.
const TOML_DATETIME_FIELD: &str = "\"$__toml_private_datetime\"";

/// The text at an error's position (`at`) starts with the last key of `key_path`, bare or
/// quoted as the user wrote it.
fn check_points_at_key(key_path: &str, at: &str, shown: &str) -> Result<(), TestCaseError> {
    if key_path.ends_with('"') {
        // A quoted key: Display escapes it, so only the opening quote is compared.
        prop_assert!(
            at.starts_with(['"', '\'']),
            "not at the key: {shown}\n  at: {at}"
        );
        return Ok(());
    }
    let key = key_path.rsplit('.').next().unwrap_or(key_path);
    let quoted = at.strip_prefix(['"', '\'']).unwrap_or(at);
    prop_assert!(
        at.starts_with(key) || quoted.starts_with(key),
        "not at the key {key}: {shown}\n  at: {at}"
    );
    Ok(())
}

/// Runs `parse` and checks its error, if any.
fn parse_and_check(text: &str, path: &str) -> Result<(), TestCaseError> {
    match lifeboat_plan::parse(text, Path::new(path)) {
        Ok(_) => Ok(()),
        Err(e) => check_error(&e, text, path),
    }
}

/// Where and how a secret is written into a plan.
#[derive(Debug, Clone)]
enum Plant {
    /// `key = "SECRET"` inserted after a line: keys only a secret goes in, and unknown or
    /// misspelt keys a user might put one in.
    KeyValue(Index, &'static str),
    /// The value of a `url = ...` line (or a new `url` key) becomes a URL holding the secret.
    Url(Index, &'static str),
    /// A shell command or step holding a DSN with the secret.
    Command(Index, &'static str),
    /// The secret as a key's value in a form TOML refuses: unquoted, unterminated.
    BadSyntax(Index, &'static str),
}

/// Keys planted with the secret as their value: the keys the crate refuses outright, keys it
/// does not know (misspelt or invented, where a user might still put a password), and a
/// password inside an inline table.
const SECRET_KEYS: &[&str] = &[
    "password",
    "secret",
    "token",
    "secret-access-key",
    "access-key-id",
    "routing-key",
    "pasword",
    "passwd",
    "Password",
    "db-password",
    "api-key",
    "credentials",
    "x = { password",
];

/// URL templates; `{}` is replaced by the secret.
const SECRET_URLS: &[&str] = &[
    "postgres://app:{}@db.internal:5432/app",
    "postgresql://app:{}@db/app?sslmode=require",
    "mysql://root:{}@localhost/orders",
    "redis://:{}@cache:6379",
    "redis://default:{}@cache:notaport",
    "s3://AKIAEXAMPLE:{}@bucket/prefix",
    "s3://bucket/prefix?region=x&token={}",
    "https://hooks.example.com/services/{}",
    "https://user:{}@hooks.example.com/x",
    "https://example.com/hook?api_token={}",
    "postgres://u@h/db?password={}",
    "sftp://backup:{}@host/srv",
    "postgres://app:{}/x@db/app",
    "postgres://app:{}@db/app?sslmode=bogus&connect_timeout=x",
];

/// Lines holding a DSN with the secret where the crate does not expect a URL; `{}` is replaced
/// by the secret.
const SECRET_COMMANDS: &[&str] = &[
    "backup = \"pg_dump postgres://app:{}@db/app\"",
    "run = \"psql postgresql://u:{}@h/db -c 'select 1'\"",
    "steps = [{ http = \"https://admin:{}@app/health\" }]",
    "checks = [\"postgres://u:{}@h\"]",
    "paths = [\"/srv\", \"mysql://u:{}@h/x\"]",
];

/// Lines holding the secret that are not valid TOML, so that toml's own messages are tried;
/// `{}` is replaced by the secret, `{{` and `}}` are braces.
const SECRET_SYNTAX: &[&str] = &[
    "password = {}",
    "password = \"{}",
    "password = \"\"\"{}",
    "url = 'postgres://u:{}@h",
    "token = [\"{}\"",
    "password = \"{}\" x",
    "password = \"{}\\q\"",
    "password = \"\\u{}\"",
    "password = 1{}",
    "password = [{}]",
    "url = \"postgres://u:{}@h/db\" {}",
    "secret = {{ {} }}",
];

fn plant() -> impl Strategy<Value = Plant> {
    prop_oneof![
        (any::<Index>(), select(SECRET_KEYS)).prop_map(|(i, k)| Plant::KeyValue(i, k)),
        (any::<Index>(), select(SECRET_URLS)).prop_map(|(i, u)| Plant::Url(i, u)),
        (any::<Index>(), select(SECRET_COMMANDS)).prop_map(|(i, c)| Plant::Command(i, c)),
        (any::<Index>(), select(SECRET_SYNTAX)).prop_map(|(i, s)| Plant::BadSyntax(i, s)),
    ]
}

/// `text` with the secret (`secret`, which starts with [`SECRET`]) planted as `plant` says.
fn plant_in(text: &str, plant: &Plant, secret: &str) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let n = lines.len();
    match plant {
        Plant::KeyValue(i, key) if key.ends_with("{ password") => {
            lines.insert(i.index(n + 1), format!("{key} = \"{secret}\" }}"));
        }
        Plant::KeyValue(i, key) => lines.insert(i.index(n + 1), format!("{key} = \"{secret}\"")),
        Plant::Url(i, template) => {
            let url = template.replace("{}", secret);
            let urls: Vec<usize> = (0..n)
                .filter(|&j| lines[j].trim_start().starts_with("url ="))
                .collect();
            if urls.is_empty() {
                lines.insert(i.index(n + 1), format!("url = \"{url}\""));
            } else {
                lines[urls[i.index(urls.len())]] = format!("url = \"{url}\"");
            }
        }
        Plant::Command(i, template) => {
            lines.insert(i.index(n + 1), template.replace("{}", secret));
        }
        Plant::BadSyntax(i, template) => {
            let line = template
                .replace("{{", "{")
                .replace("}}", "}")
                .replace("{}", secret);
            lines.insert(i.index(n + 1), line);
        }
    }
    lines.join("\n")
}

/// Neither the Display nor the Debug of the error of `text` contains [`SECRET`].
fn check_no_secret(text: &str, path: &str) -> Result<(), TestCaseError> {
    if let Err(e) = lifeboat_plan::parse(text, Path::new(path)) {
        check_error(&e, text, path)?;
        let shown = e.to_string();
        let debug = format!("{e:?}");
        prop_assert!(
            !shown.contains(SECRET),
            "secret in the message: {shown}\n--- from:\n{text}"
        );
        prop_assert!(
            !debug.contains(SECRET),
            "secret in Debug: {debug}\n--- from:\n{text}"
        );
    }
    Ok(())
}

/// Configuration for these tests: failures are printed (shrunk) rather than persisted to a
/// regressions file in the source tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

#[test]
fn every_base_plan_is_valid() {
    // Mutations must start from plans that parse, or they would test little but the bases.
    for base in BASES {
        for path in PATHS {
            if let Err(e) = lifeboat_plan::parse(base, Path::new(path)) {
                panic!("{e}\n--- in:\n{base}");
            }
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>(), path in select(&PATHS[..])) {
        parse_and_check(&text, path)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        // `parse` takes text; invalid UTF-8 becomes U+FFFD the way a lossy reader would.
        parse_and_check(&String::from_utf8_lossy(&bytes), PATHS[0])?;
    }

    #[test]
    fn toml_like_text_never_panics(text in toml_soup(), path in select(&PATHS[..])) {
        parse_and_check(&text, path)?;
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn broken_plans_never_panic_and_errors_keep_their_shape((text, path) in broken_plan()) {
        parse_and_check(&text, path)?;
    }

    #[test]
    fn a_planted_secret_never_reaches_an_error(
        base in select(&BASES[..]),
        plant in plant(),
        suffix in r#"[a-zA-Z0-9/#?@:%+=${}\\"' ]{0,4}"#,
        mutations in prop::collection::vec(mutation(), 0..=2),
        path in select(&PATHS[..]),
    ) {
        // The suffix gives the secret characters that end a URL's userinfo early or mean
        // something in a query, as real passwords (and AWS secret keys) do, and characters
        // that end or escape a TOML string or start a `${` reference.
        let secret = format!("{SECRET}{suffix}");
        let planted = plant_in(base, &plant, &secret);
        let text = mutations.iter().fold(planted, |t, m| apply(&t, m));
        check_no_secret(&text, path)?;
    }
}

/// Found by `broken_plans_never_panic_and_errors_keep_their_shape`: a TOML date or time where
/// a table belongs (`retention`, `anomaly`, `plan`, an asset, repository or notifier, a step)
/// was reported as `assets.web.retention."$__toml_private_datetime": unknown key`. The user
/// wrote no such key; the fault is the value's type, reported at its key.
#[test]
fn a_datetime_where_a_table_belongs_is_a_type_error_at_its_key() {
    for value in ["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00"] {
        let e = crate::error(&format!("{MINIMAL}retention = {value}\n"));
        assert_eq!(e.key_path, "assets.web.retention", "{e}");
        assert!(!e.to_string().contains("$__toml_private_datetime"), "{e}");
        assert_eq!(e.message, "expected a table, found a date or time", "{e}");
        assert_eq!((e.line, e.column), (Some(7), Some(13)), "{e}");
    }
}
