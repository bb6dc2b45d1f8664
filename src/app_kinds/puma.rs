//! Puma (Ruby, Rack): Debian's puma under foobar's unit.

use super::{AppServer, Reload};

pub struct Puma;

impl AppServer for Puma {
    fn name(&self) -> &'static str {
        "puma"
    }
    fn language(&self) -> &'static str {
        "Ruby"
    }
    fn label(&self) -> &'static str {
        "Puma"
    }
    fn hop(&self) -> &'static str {
        "unix socket"
    }
    fn unit(&self) -> &'static str {
        "foobar-puma"
    }
    fn reload(&self) -> Reload {
        // Workers restart one at a time; the others keep serving.
        Reload {
            phased: true,
            how: "phased restart (USR1)",
        }
    }
    fn entry_key(&self) -> &'static str {
        "rack"
    }
    fn entry_files(&self, entry: &str) -> Vec<String> {
        vec![entry.to_string()]
    }
    fn sample(&self) -> &'static str {
        "ruby"
    }
    fn env(&self) -> &'static [(&'static str, &'static str)] {
        &[("RACK_ENV", "production")]
    }
    fn console(&self) -> &'static str {
        "if [ -x bin/rails ]; then exec bundle exec rails console; else exec irb; fi"
    }
    /// As its unit runs it (templates/app/puma.service.j2), single mode.
    fn drill_server(&self, entry: &str, listen: &str) -> String {
        format!(
            "/usr/bin/puma --environment production --workers 0 --threads 1:4 --bind tcp://{listen} --dir . {}",
            crate::shell::quote(entry)
        )
    }
}
