//! Quoting for the POSIX shell on the servers, and for systemd's command
//! lines. Every value that reaches a remote shell goes through `quote`,
//! after the inventory validated it. The app's environment file, which
//! systemd and sh both read, takes its values through `env_quote`.

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

/// Whether an environment value or a secret may hold `c`: every printable
/// character is written exactly into the app's environment file and SQL.
/// Control characters are not (a newline ends the file's line, NUL a C
/// string, a tab or an escape is no one's intent), nor what systemd
/// refuses in an environment file: Unicode noncharacters and the
/// byte-order mark.
pub fn can_carry(c: char) -> bool {
    let n = u32::from(c);
    !c.is_control() && c != '\u{feff}' && !(0xfdd0..=0xfdef).contains(&n) && n & 0xfffe != 0xfffe
}

/// `s` inside double quotes, as the app's environment file holds it:
/// systemd (EnvironmentFile=) and a POSIX shell sourcing the same file
/// both read it back exactly. Inside double quotes each takes `\"`, `\\`,
/// `\$` and `` \` `` for the character after the backslash and every other
/// character as it is, so escaping exactly those four leaves nothing to
/// expand (systemd never expands `$`, sh would) or to drop. `s` holds only
/// characters `can_carry` accepts.
pub fn env_quote(s: &str) -> String {
    format!("\"{}\"", env_escape(s))
}

/// What `env_quote` puts between the quotes: how a secret appears in the
/// file, for masking it there.
pub fn env_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `s` as one argument of a systemd command line (`ExecStart=`), in
/// double quotes: backslashes and quotes escaped, `%` (systemd's
/// specifiers) and `$` (its variables) doubled, so that the command gets
/// `s` as written; control characters as C escapes, which systemd reads.
pub fn systemd_arg(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_systemd_argument_reaches_the_command_as_written() {
        assert_eq!(
            systemd_arg("celery -A proj worker"),
            r#""celery -A proj worker""#
        );
        assert_eq!(
            systemd_arg(r#"echo "$HOME" 100% \ 'x'"#),
            r#""echo \"$$HOME\" 100%% \\ 'x'""#
        );
        assert_eq!(systemd_arg("a\tb"), r#""a\x09b""#);
    }

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

    #[test]
    fn an_environment_value_escapes_what_double_quotes_unescape() {
        assert_eq!(env_quote("plain"), r#""plain""#);
        assert_eq!(
            env_quote(r#"a"b\c$d`e'f!g^h~i=j#k;l"#),
            r#""a\"b\\c\$d\`e'f!g^h~i=j#k;l""#
        );
        // A trailing backslash never escapes the closing quote.
        assert_eq!(env_quote("x\\"), r#""x\\""#);
    }

    #[test]
    fn printable_characters_are_carried_and_control_characters_are_not() {
        assert!((' '..='~').all(can_carry));
        assert!("café ☕ 𝄞".chars().all(can_carry));
        for c in [
            '\0',
            '\n',
            '\r',
            '\t',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{feff}',
            '\u{fdd0}',
            '\u{fffe}',
            '\u{1ffff}',
        ] {
            assert!(!can_carry(c), "{c:?}");
        }
    }
}
