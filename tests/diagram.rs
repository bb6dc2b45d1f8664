//! `foobar diagram`: the SVG is rendered to PNG by a real renderer
//! (librsvg's rsvg-convert), and README's picture is the current output.

mod common;

use common::*;

#[test]
fn the_svg_renders_to_a_png_and_readme_shows_the_current_one() {
    for (inventory, committed) in [
        ("inventory/foobar.yml", "docs/foobar.svg"),
        ("inventory/foobar-ha.yml", "docs/foobar-ha.svg"),
    ] {
        renders_and_is_current(inventory, committed);
    }
}

fn renders_and_is_current(inventory: &str, committed: &str) {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("foobar.svg");
    let out = foobar()
        .args(["-i", inventory, "diagram", "-o", svg.to_str().unwrap()])
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
    assert_eq!(
        std::fs::read_to_string(committed).unwrap(),
        std::fs::read_to_string(&svg).unwrap(),
        "{committed} is stale: foobar -i {inventory} diagram -o {committed}"
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

#[test]
fn mermaid_text_for_the_ha_lab() {
    let out = foobar()
        .args([
            "-i",
            "inventory/lab-ha.yml",
            "diagram",
            "--format",
            "mermaid",
        ])
        .output()
        .unwrap();
    let m = text(&out.stdout);
    assert!(
        m.contains("lb1_0[\"HAProxy: load balancer :80 to web1, web2, web3"),
        "{m}"
    );
    assert!(
        m.contains("keepalived: VRRP: shares 10.249.0.10 with lb2"),
        "{m}"
    );
    assert!(
        m.contains("HAProxy (MariaDB): :3306 from the app servers to one writer of db1, db2, db3"),
        "{m}"
    );
    assert!(
        m.contains(
            "the app uses the Galera cluster (db1, db2, db3) through HAProxy at 10.249.0.10:3306"
        ),
        "{m}"
    );
    assert!(m.contains("Galera member with db2, db3"), "{m}");
    assert!(
        m.contains("browser -- \"2. HTTP to 10.249.0.10\" --> lb1_0"),
        "{m}"
    );
}
