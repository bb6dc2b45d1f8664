//! `foobar console [-- COMMAND...]`: an interactive terminal in the app's
//! live release on one app server (the first, or the one `-l` names), as
//! the app's processes run: the framework's console (`python manage.py
//! shell`, `rails console`, `php artisan tinker`), or the command given.
//! The session is the output: there is no `--json` document.

use clap::Args;

use crate::cli::Global;
use crate::engine;
use crate::engine::app::{self, AppLayout};
use crate::error::InputError;
use crate::inventory::Role;
use crate::progress;
use crate::secrets::Secrets;

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Instead of the app's console: this command and its arguments, after
    /// `--`; one argument holding spaces is a line of shell (`sh -c`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub async fn run(g: &Global, args: ConsoleArgs) -> anyhow::Result<u8> {
    let inv = super::inventory_to_connect(g)?;
    let servers = super::servers(g, &inv, Some(Role::App))?;
    let server = match servers.as_slice() {
        [] => return Err(InputError::new(
            &inv.path,
            "no app server among the servers -l picks: console opens a terminal on an app server",
        )
        .into()),
        [first, ..] if servers.len() == 1 || g.limit.is_empty() => *first,
        several => {
            let names: Vec<&str> = several.iter().map(|s| s.name.as_str()).collect();
            return Err(InputError::new(
                &inv.path,
                format!(
                    "console opens one terminal, and -l picks {}: name one server",
                    names.join(", ")
                ),
            )
            .into());
        }
    };
    let layout = AppLayout::of(&inv.inventory);
    let command = if args.command.is_empty() {
        layout.console()
    } else {
        super::command_words(&args.command)
    };
    // The terminal's type, as ssh passed it on.
    let script = layout.in_live_release(&command, &[("TERM", "${TERM:-dumb}".into())]);
    let out = progress::reporter(g.verbosity());
    // The session goes to the terminal unread: there is nothing to mask.
    let secrets = Secrets::masked();
    let engine = super::engine(g, out.as_ref(), &secrets);
    let code = app::interactive(&engine, &engine::ssh_target(&inv, server), &script).await?;
    // As ssh passes the remote command's code on; killed by a signal: 1.
    Ok(u8::try_from(code).unwrap_or(1))
}
