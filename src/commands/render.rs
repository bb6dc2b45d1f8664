//! `foobar render`: every file of every server, rendered locally with no
//! SSH. Secrets are masked, so the output can be read, diffed and shared.

use std::path::PathBuf;

use clap::Args;

use crate::cli::{exit, Global};
use crate::inventory;
use crate::plan;
use crate::playbook;
use crate::render::{self, Desired, Renderer};
use crate::secrets::Secrets;

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Write the files under DIR/<server>/<path>; without it, list them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(g: &Global, args: RenderArgs) -> anyhow::Result<u8> {
    let inv = inventory::load(&g.inventory)?;
    let pb = playbook::load(&g.project.join("playbooks/provision.yml"))?;
    let renderer = Renderer::new(&g.project);
    let secrets = Secrets::masked();
    let today = plan::today();
    for server in &inv.inventory.servers.0 {
        for step in render::resolve(&renderer, &pb, &inv, server, &secrets)? {
            let Desired::File {
                path,
                content,
                mode,
                soa_serial,
                ..
            } = &step.desired
            else {
                continue;
            };
            let content = if *soa_serial {
                plan::zone_with_serial(content, None, None, today)
            } else {
                content.clone()
            };
            match &args.out {
                Some(dir) => {
                    let dest = dir
                        .join(server.name.as_str())
                        .join(path.trim_start_matches('/'));
                    std::fs::create_dir_all(dest.parent().expect("has a parent"))?;
                    std::fs::write(&dest, &content)?;
                    println!("{}", dest.display());
                }
                None => println!(
                    "{} {path} ({} bytes, mode {mode:04o})",
                    server.name,
                    content.len()
                ),
            }
        }
    }
    Ok(exit::OK)
}
