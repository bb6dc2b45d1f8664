//! `foobar diagram`: the inventory's design as a picture (SVG) or as
//! Mermaid text, on stdout or into a file.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::cli::{exit, Global};
use crate::diagram;
use crate::inventory;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Svg,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct DiagramArgs {
    /// Write here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Svg)]
    pub format: Format,
}

pub fn run(g: &Global, args: DiagramArgs) -> anyhow::Result<u8> {
    let inv = inventory::load(&g.inventory)?;
    let text = match args.format {
        Format::Svg => diagram::svg(&inv.inventory),
        Format::Mermaid => diagram::mermaid(&inv.inventory),
    };
    match (args.out, g.json) {
        (Some(path), _) => std::fs::write(path, text)?,
        // The picture inside a document, for scripts that want one format.
        (None, true) => crate::cli::print_json(
            "diagram",
            &serde_json::json!({ "format": format!("{:?}", args.format).to_lowercase(), "text": text }),
        )?,
        (None, false) => print!("{text}"),
    }
    Ok(exit::OK)
}
