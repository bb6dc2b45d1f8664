//! `foobar diagram`: the SVG is rendered to PNG by a real renderer
//! (librsvg's rsvg-convert), and README's picture is the current output.

mod common;

use common::*;

#[test]
fn the_svg_renders_to_a_png_and_readme_shows_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("foobar.svg");
    let out = foobar()
        .args([
            "-i",
            "inventory/foobar.yml",
            "diagram",
            "-o",
            svg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let png = dir.path().join("foobar.png");
    let rendered = std::process::Command::new("rsvg-convert")
        .arg(&svg)
        .arg("-o")
        .arg(&png)
        .output()
        .expect("rsvg-convert (librsvg2-bin, installed by scripts/host-setup.sh)");
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // Width and height from the IHDR chunk: the whole picture.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(width >= 900 && height >= 300, "{width}x{height}");
    let committed = std::fs::read_to_string("docs/foobar.svg").unwrap();
    assert_eq!(
        committed,
        std::fs::read_to_string(&svg).unwrap(),
        "docs/foobar.svg is stale: foobar -i inventory/foobar.yml diagram -o docs/foobar.svg"
    );
}

#[test]
fn mermaid_text_for_the_lab() {
    let out = foobar()
        .args(["-i", "inventory/lab.yml", "diagram", "--format", "mermaid"])
        .output()
        .unwrap();
    let m = text(&out.stdout);
    assert!(m.starts_with("flowchart LR"), "{m}");
    assert!(m.contains("web1 — 10.250.0.10"), "{m}");
}
