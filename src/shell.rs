//! Quoting for the POSIX shell on the servers. Every value that reaches a
//! remote shell goes through `quote`, after the inventory validated it.

/// Quote `s` as one POSIX shell word.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(
            quote("/etc/nginx/sites-enabled/foobar"),
            "/etc/nginx/sites-enabled/foobar"
        );
    }

    #[test]
    fn metacharacters_are_single_quoted() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
