//! gunicorn (Python, WSGI): Debian's gunicorn under foobar's unit, the
//! release's packages in a virtualenv made from wheels.

use super::{AppServer, Reload};

pub struct Gunicorn;

impl AppServer for Gunicorn {
    fn name(&self) -> &'static str {
        "gunicorn"
    }
    fn language(&self) -> &'static str {
        "Python"
    }
    fn label(&self) -> &'static str {
        "gunicorn"
    }
    fn hop(&self) -> &'static str {
        "unix socket"
    }
    fn unit(&self) -> &'static str {
        "foobar-app"
    }
    fn reload(&self) -> Reload {
        // New workers start, old ones finish their requests in flight.
        Reload {
            phased: false,
            how: "graceful reload (HUP)",
        }
    }
    fn entry_key(&self) -> &'static str {
        "wsgi"
    }
    /// `module.sub:callable`: the module's file or package.
    fn entry_files(&self, entry: &str) -> Vec<String> {
        let module = entry.split(':').next().unwrap_or_default();
        let base = module.replace('.', "/");
        vec![format!("{base}.py"), format!("{base}/__init__.py")]
    }
    fn python_wheels(&self) -> bool {
        true
    }
    fn sample(&self) -> &'static str {
        "python"
    }
    fn console(&self) -> &'static str {
        "if [ -f manage.py ]; then exec python manage.py shell; else exec python; fi"
    }
    /// As its unit runs it (templates/app/gunicorn.service.j2), without
    /// the config that marks booted workers for the live unit's reload,
    /// nor the release's own `gunicorn.conf.py` (no daemon, no hooks).
    fn drill_server(&self, entry: &str, listen: &str) -> String {
        format!(
            "/usr/bin/gunicorn --config /dev/null --workers 1 --bind {listen} --pythonpath .,.venv/site-packages {}",
            crate::shell::quote(entry)
        )
    }
}
