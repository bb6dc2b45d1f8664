//! PHP-FPM (PHP): Debian's php8.2-fpm with foobar's pool; nginx runs
//! every .php script under the web root and the front controller for the
//! rest, over FastCGI.

use super::{AppServer, Reload};

pub struct PhpFpm;

impl AppServer for PhpFpm {
    fn name(&self) -> &'static str {
        "php-fpm"
    }
    fn language(&self) -> &'static str {
        "PHP"
    }
    fn label(&self) -> &'static str {
        "PHP-FPM"
    }
    fn hop(&self) -> &'static str {
        "FastCGI socket"
    }
    fn unit(&self) -> &'static str {
        "php8.2-fpm"
    }
    fn reload(&self) -> Reload {
        Reload {
            phased: false,
            how: "graceful reload (USR2)",
        }
    }
    fn entry_key(&self) -> &'static str {
        "front_controller"
    }
    fn entry_files(&self, entry: &str) -> Vec<String> {
        vec![entry.to_string()]
    }
    fn runs_web_root_scripts(&self) -> bool {
        true
    }
    fn sample(&self) -> &'static str {
        "php"
    }
    fn console(&self) -> &'static str {
        "if [ -f artisan ]; then exec php artisan tinker; else exec php -a; fi"
    }
    fn writes_executable_memory(&self) -> bool {
        true
    }
    /// php-fpm speaks FastCGI only: PHP's built-in web server (php-cli,
    /// which php8.2-fpm brings) runs the same code over HTTP, the front
    /// controller's folder as the web root. With the front controller
    /// named index.php the server routes as nginx does (a file as it is, a
    /// `.php` run, the rest to index.php); any other is the router of
    /// every request. The app's environment is in getenv() and `$_ENV`,
    /// not in `$_SERVER` as php-fpm's `env[]` also puts it.
    fn drill_server(&self, entry: &str, listen: &str) -> String {
        let (web_root, file) = entry.rsplit_once('/').unwrap_or((".", entry));
        let router = if file == "index.php" {
            String::new()
        } else {
            format!(" {}", crate::shell::quote(entry))
        };
        format!(
            "/usr/bin/php8.2 -d variables_order=EGPCS -S {listen} -t {}{router}",
            crate::shell::quote(web_root)
        )
    }
}
