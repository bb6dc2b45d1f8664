//! `foobar diagram`: the inventory's design as a picture (SVG) or as
//! Mermaid text, on stdout or into a file.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::cli::{exit, Global};
use crate::diagram;

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
    let inv = super::inventory(g)?;
    let text = match args.format {
        Format::Svg => diagram::svg(&inv.inventory),
        Format::Mermaid => diagram::mermaid(&inv.inventory),
    };
    let format = format!("{:?}", args.format).to_lowercase();
    match (args.out, g.json) {
        (Some(path), json) => {
            std::fs::write(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            // What was written, for scripts; the picture is in the file.
            if json {
                crate::cli::print_json(
                    "diagram",
                    &serde_json::json!({
                        "format": format,
                        "written_to": path.display().to_string(),
                        "bytes": text.len(),
                    }),
                )?;
            }
        }
        // The picture inside a document, for scripts that want one format.
        (None, true) => crate::cli::print_json(
            "diagram",
            &serde_json::json!({ "format": format, "text": text }),
        )?,
        (None, false) => crate::cli::write_stdout(format_args!("{text}"))?,
    }
    Ok(exit::OK)
}
