//! The rule for plan, repository, asset, notifier and scenario names.

/// Longest name: names become snapshot tags (`asset=NAME`) and path components.
const MAX_LEN: usize = 63;

/// A name that breaks the naming rule, with a suggestion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NameError {
    /// What is wrong with the name; quotes the name, which is never secret.
    pub message: String,
    /// What to write instead.
    pub hint: String,
}

/// Checks that `name` matches `[a-z0-9][a-z0-9_-]{0,62}`.
///
/// Names end up in restic snapshot tags (`plan=NAME`, `asset=NAME`), where a comma splits a tag
/// and `=` confuses the key, and in paths inside snapshots; the narrow rule keeps them safe
/// everywhere without quoting.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let rule = "use lowercase letters, digits, '-' and '_', starting with a letter or digit";
    let problem = if name.is_empty() {
        Some("a name may not be empty".to_owned())
    } else if name.chars().count() > MAX_LEN {
        Some(format!(
            "invalid name {name:?}: longer than {MAX_LEN} characters"
        ))
    } else if let Some(c) = name.chars().find(|c| !is_name_char(*c)) {
        Some(format!(
            "invalid name {name:?}: {c:?} is not allowed; {rule}"
        ))
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Some(format!(
            "invalid name {name:?}: must start with a letter or digit"
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(message) => Err(NameError {
            message,
            hint: match suggestion(name) {
                Some(s) => format!(
                    "names become snapshot tags, where commas, '=' and spaces break things; try {s:?}"
                ),
                None => format!("names become snapshot tags; {rule}"),
            },
        }),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

/// The nearest valid name, if there is one.
fn suggestion(name: &str) -> Option<String> {
    let mut s: String = name
        .to_lowercase()
        .chars()
        .map(|c| if is_name_char(c) { c } else { '-' })
        .collect();
    s = s
        .trim_start_matches(['-', '_'])
        .chars()
        .take(MAX_LEN)
        .collect();
    let s = s.trim_end_matches('-').to_owned();
    validate_name_plain(&s).then_some(s)
}

fn validate_name_plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= MAX_LEN
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(is_name_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_form() {
        for ok in ["db", "dev-tools", "a", "0", "web_1", &"x".repeat(63)] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_with_a_suggestion() {
        let e = validate_name("My DB").unwrap_err();
        assert_eq!(
            e.message,
            "invalid name \"My DB\": 'M' is not allowed; use lowercase letters, digits, '-' and '_', starting with a letter or digit"
        );
        assert!(e.hint.ends_with("try \"my-db\""), "{}", e.hint);
        assert!(validate_name("a,b").is_err());
        assert!(validate_name("a=b").is_err());
        assert_eq!(
            validate_name("-db").unwrap_err().message,
            "invalid name \"-db\": must start with a letter or digit"
        );
        assert_eq!(
            validate_name("").unwrap_err().message,
            "a name may not be empty"
        );
        assert!(
            validate_name(&"x".repeat(64))
                .unwrap_err()
                .message
                .contains("longer than 63")
        );
        assert_eq!(
            validate_name("***").unwrap_err().hint,
            "names become snapshot tags; use lowercase letters, digits, '-' and '_', starting with a letter or digit"
        );
    }
}
