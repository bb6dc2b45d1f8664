//! `foobar render`: every file of every server (or those `-l` picks),
//! rendered locally with no SSH. Secrets are masked, so the output can be read, diffed and shared.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::cli::{exit, outln, Global};
use crate::plan;
use crate::render::Renderer;
use crate::resolve;
use crate::secrets::Secrets;
use crate::steps::template::zone_with_serial;

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Write the files under DIR/<server>/<path>; without it, list them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(g: &Global, args: RenderArgs) -> anyhow::Result<u8> {
    let inv = super::inventory(g)?;
    let servers = super::servers(g, &inv, None)?;
    let project = super::project(g);
    let pb = crate::playbook::of_project(&project)?;
    let renderer = Renderer::new(&project);
    // Secrets are checked as provision checks them, and never shown.
    let secrets = Secrets::checked_masked(&inv)?;
    super::warn(g, &secrets);
    let today = plan::today();
    let mut files = Vec::new();
    for server in servers {
        let steps = resolve::resolve(&renderer, &pb, &inv, server, &secrets)?;
        for file in steps.iter().flat_map(|step| step.step.files()) {
            let (path, mode) = (file.path, file.mode);
            let content = if file.soa_serial {
                zone_with_serial(file.content, None, None, today)
            } else {
                file.content.to_vec()
            };
            let written = match &args.out {
                Some(dir) => {
                    let dest = dir
                        .join(server.name.as_str())
                        .join(path.trim_start_matches('/'));
                    std::fs::create_dir_all(dest.parent().expect("has a parent"))
                        .and_then(|()| std::fs::write(&dest, &content))
                        .with_context(|| format!("cannot write {}", dest.display()))?;
                    if !g.json {
                        outln!("{}", dest.display())?;
                    }
                    Some(dest.display().to_string())
                }
                None => {
                    if !g.json {
                        outln!(
                            "{} {path} ({} bytes, mode {mode:04o})",
                            server.name,
                            content.len()
                        )?;
                    }
                    None
                }
            };
            files.push(serde_json::json!({
                "server": server.name.as_str(),
                "path": path,
                "bytes": content.len(),
                "mode": format!("{mode:04o}"),
                "written_to": written,
            }));
        }
    }
    if g.json {
        crate::cli::print_json("render", &serde_json::json!({ "files": files }))?;
    }
    Ok(exit::OK)
}
