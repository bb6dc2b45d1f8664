//! Application servers. Each kind is one module behind [`AppServer`]: its
//! name in the inventory, the unit that runs it, how a reload keeps the
//! requests in flight, its entry point in the code base and `init`'s
//! sample app. `registry!` at the bottom lists them: a new kind is one
//! file plus one line there (and its playbook block and templates).
//!
//! This module sits below the inventory: it knows no inventory type.

use serde::{Serialize, Serializer};

/// How a reload of the app server keeps the requests in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reload {
    /// Workers restart one at a time (puma's USR1) rather than a new set
    /// starting beside the old (HUP, USR2).
    pub phased: bool,
    /// In words, with the signal.
    pub how: &'static str,
}

/// One kind of application server.
pub trait AppServer: Sync {
    /// As written in the inventory's `app.kind`.
    fn name(&self) -> &'static str;
    /// The language it runs, for messages.
    fn language(&self) -> &'static str;
    /// As drawn in the diagram, with how nginx reaches it.
    fn label(&self) -> &'static str;
    fn hop(&self) -> &'static str;
    /// The systemd unit that runs it.
    fn unit(&self) -> &'static str;
    fn reload(&self) -> Reload;
    /// The key of `app` naming its entry point (`wsgi`).
    fn entry_key(&self) -> &'static str;
    /// The files of the code base that entry point may be, one of which
    /// must exist.
    fn entry_files(&self, entry: &str) -> Vec<String>;
    /// Its releases get a virtualenv of the code base's wheels.
    fn python_wheels(&self) -> bool {
        false
    }
    /// nginx runs its scripts where they lie in the folder served at `/`
    /// (PHP): that folder may be the release itself, and must be named.
    fn runs_web_root_scripts(&self) -> bool {
        false
    }
    /// `foobar init`'s sample app: a folder of `apps/`.
    fn sample(&self) -> &'static str;
    /// Variables of its own that every command of the app gets besides
    /// app.env's: (name, value).
    fn env(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// What `foobar console` runs in the live release: shell, picking the
    /// framework's console by the files the release has.
    fn console(&self) -> &'static str;
    /// The app server as a throwaway: run in the foreground in the release
    /// it starts in, one worker, answering HTTP at `listen`
    /// (`127.0.0.1:PORT`): what a restore drill sends the app's checks
    /// to.
    fn drill_server(&self, entry: &str, listen: &str) -> String;
    /// Its language runs code it writes into memory (PHP's PCRE JIT):
    /// the app's units go without MemoryDenyWriteExecute.
    fn writes_executable_memory(&self) -> bool {
        false
    }
}

/// Lists the kinds: `module::Type` becomes the variant `Type`.
macro_rules! registry {
    ($($(#[$attr:meta])* $module:ident :: $kind:ident),* $(,)?) => {
        $($(#[$attr])* mod $module;)*

        /// An application server kind, as the inventory names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AppKind {
            $($(#[$attr])* $kind,)*
        }

        impl AppKind {
            /// Every kind, in registry order.
            pub const ALL: &'static [AppKind] = &[$($(#[$attr])* AppKind::$kind,)*];

            pub fn server(self) -> &'static dyn AppServer {
                match self {
                    $($(#[$attr])* AppKind::$kind => &$module::$kind,)*
                }
            }
        }
    };
}

impl AppKind {
    pub fn name(self) -> &'static str {
        self.server().name()
    }

    pub fn unit(self) -> &'static str {
        self.server().unit()
    }

    /// The variables every command of the app gets besides app.env's (its
    /// processes and scheduled jobs, `exec`, `console`, the build and the
    /// release command), as its units get them: PATH (the release's
    /// virtualenv first, for Python), HOME (the app user's), LANG and the
    /// kind's own. `release` is the release's folder as the command sees
    /// it (`<root>/current`, or a shell word like `$rel`).
    pub fn run_env(self, home: &str, release: &str) -> Vec<(&'static str, String)> {
        let venv = if self.server().python_wheels() {
            format!("{release}/.venv/bin:")
        } else {
            String::new()
        };
        let mut env = vec![
            ("PATH", format!("{venv}/usr/local/bin:/usr/bin:/bin")),
            ("HOME", home.to_string()),
            ("LANG", "C.UTF-8".to_string()),
        ];
        env.extend(self.server().env().iter().map(|(k, v)| (*k, v.to_string())));
        env
    }

    pub fn parse(name: &str) -> Option<AppKind> {
        AppKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Every kind for messages: `` `gunicorn` (Python), `php-fpm` (PHP) ``.
    pub fn listed() -> String {
        AppKind::ALL
            .iter()
            .map(|k| format!("`{}` ({})", k.name(), k.server().language()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Serialize for AppKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

registry! {
    gunicorn::Gunicorn,
    php_fpm::PhpFpm,
    puma::Puma,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_units_and_samples_are_distinct() {
        for (i, a) in AppKind::ALL.iter().enumerate() {
            assert_eq!(AppKind::parse(a.name()), Some(*a));
            for b in &AppKind::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_ne!(a.unit(), b.unit());
                assert_ne!(a.server().sample(), b.server().sample());
            }
        }
    }

    #[test]
    fn sample_apps_hold_their_default_entry_points() {
        let apps = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("apps");
        for (kind, entry) in [
            (AppKind::Gunicorn, "app:application"),
            (AppKind::PhpFpm, "app.php"),
            (AppKind::Puma, "config.ru"),
        ] {
            let s = kind.server();
            let dir = apps.join(s.sample());
            assert!(
                s.entry_files(entry).iter().any(|f| dir.join(f).is_file()),
                "{}",
                kind.name()
            );
        }
    }
}
