//! `foobar diagram`: the SVG is rendered to PNG by a real renderer
//! (librsvg's rsvg-convert), and README's picture is the current output;
//! its arrows, read back from the SVG and from the Mermaid text, are who
//! calls whom.

mod common;

use std::collections::{BTreeSet, HashMap};

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

/// Who calls whom, as `(caller, called)`: a part as `server/part`, a box
/// left of the servers by its name (`User's browser`, a floating address).
type Edges = BTreeSet<(String, String)>;

/// The arrows of `foobar diagram`'s SVG, read back from what is drawn: each
/// arrow (a path with an arrowhead) goes from the box its first point is
/// on to the box its last point is on, a box named by its bold text (and a
/// part by its server's too).
fn svg_edges(svg: &str) -> Edges {
    struct Box {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        name: String,
    }
    let number = |a: &HashMap<String, String>, k: &str| a.get(k)?.parse::<f64>().ok();
    let mut boxes: Vec<Box> = elements(svg, "rect")
        .iter()
        .filter_map(|(a, _)| {
            Some(Box {
                x: number(a, "x")?,
                y: number(a, "y")?,
                w: number(a, "width")?,
                h: number(a, "height")?,
                name: String::new(),
            })
        })
        .collect();
    let smallest = |boxes: &[Box], x: f64, y: f64, slack: f64| {
        boxes
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                x >= b.x - slack
                    && x <= b.x + b.w + slack
                    && y >= b.y - slack
                    && y <= b.y + b.h + slack
            })
            .min_by(|(_, a), (_, b)| (a.w * a.h).total_cmp(&(b.w * b.h)))
            .map(|(i, _)| i)
    };
    for (a, content) in elements(svg, "text") {
        if a.get("font-weight").map(String::as_str) == Some("bold") {
            let (x, y) = (number(&a, "x").unwrap(), number(&a, "y").unwrap());
            if let Some(i) = smallest(&boxes, x, y, 0.0) {
                boxes[i].name = content;
            }
        }
    }
    // A part is named by the server whose box holds it, too.
    let names: Vec<String> = boxes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let server = boxes.iter().enumerate().find(|(j, f)| {
                *j != i
                    && f.x <= b.x
                    && f.y <= b.y
                    && f.x + f.w >= b.x + b.w
                    && f.y + f.h >= b.y + b.h
            });
            match server {
                Some((_, f)) => format!("{}/{}", f.name.split(" — ").next().unwrap(), b.name),
                None => b.name.clone(),
            }
        })
        .collect();
    elements(svg, "path")
        .iter()
        .filter(|(a, _)| a.contains_key("marker-end"))
        .map(|(a, _)| {
            let points: Vec<(f64, f64)> = a["d"]
                .split(|c: char| c == 'M' || c == 'L' || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            let on = |(x, y): (f64, f64)| {
                let i = smallest(&boxes, x, y, 2.0)
                    .unwrap_or_else(|| panic!("an arrow ends at {x},{y}, on no box"));
                names[i].clone()
            };
            (on(points[0]), on(*points.last().unwrap()))
        })
        .collect()
}

/// The elements named `name`, each with its attributes and its text.
fn elements(svg: &str, name: &str) -> Vec<(HashMap<String, String>, String)> {
    let unescape = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    };
    let open = format!("<{name} ");
    let close = format!("</{name}>");
    svg.match_indices(&open)
        .map(|(at, _)| {
            let rest = &svg[at + open.len()..];
            let end = rest.find('>').unwrap();
            let mut attributes = HashMap::new();
            let mut tag = rest[..end].trim_end_matches('/');
            while let Some((key, value)) = tag.split_once("=\"") {
                let (value, after) = value.split_once('"').unwrap();
                attributes.insert(key.trim().to_string(), unescape(value));
                tag = after;
            }
            let content = if rest[..end].ends_with('/') {
                String::new()
            } else {
                unescape(&rest[end + 1..end + 1 + rest[end + 1..].find(&close).unwrap()])
            };
            (attributes, content)
        })
        .collect()
}

/// The arrows of the Mermaid text, named as `svg_edges` names them.
fn mermaid_edges(mermaid: &str) -> Edges {
    let mut names = HashMap::new();
    let mut server = None;
    let mut edges = Edges::new();
    for line in mermaid.lines().map(str::trim) {
        if line == "end" {
            server = None;
        } else if let Some(def) = line.strip_prefix("subgraph ") {
            let (_, label) = def.split_once("[\"").unwrap();
            server = Some(label.split(" — ").next().unwrap().to_string());
        } else if let Some((id, label)) = line.split_once("[\"") {
            let name = label.split(": ").next().unwrap();
            let name = match &server {
                Some(s) => format!("{s}/{name}"),
                None => name.to_string(),
            };
            names.insert(id.to_string(), name);
        } else if let Some((from, rest)) = line.split_once(" -- \"") {
            let (_, to) = rest.split_once("\" --> ").unwrap();
            edges.insert((names[from].clone(), names[to].clone()));
        } else if let Some((a, rest)) = line.split_once(" <-- \"") {
            let (_, b) = rest.split_once("\" --> ").unwrap();
            edges.insert((names[a].clone(), names[b].clone()));
            edges.insert((names[b].clone(), names[a].clone()));
        }
    }
    edges
}

/// The SVG's and the Mermaid text's arrows for `inventory`, which agree.
fn drawn_edges(inventory: &str) -> Edges {
    let diagram = |format: &str| {
        let out = foobar()
            .args(["-i", inventory, "diagram", "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let mermaid = diagram("mermaid");
    insta::assert_snapshot!(
        format!(
            "mermaid__{}",
            std::path::Path::new(inventory)
                .file_stem()
                .unwrap()
                .to_str()
                .unwrap()
        ),
        mermaid
    );
    let edges = svg_edges(&diagram("svg"));
    assert_eq!(
        edges,
        mermaid_edges(&mermaid),
        "{inventory}: SVG and Mermaid differ"
    );
    // Data never flows from the database or the load balancers' keepalived
    // to the nameservers, nor anything into the browser.
    for (from, to) in &edges {
        assert!(
            !(to.contains("BIND") && (from.contains("MySQL") || from.contains("keepalived"))),
            "{inventory}: {from} -> {to}"
        );
        assert_ne!(to, "User's browser", "{inventory}: {from} -> {to}");
    }
    edges
}

fn edges<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Edges {
    pairs
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn one_server_the_browser_asks_bind_then_calls_nginx_which_calls_the_app_which_calls_mysql() {
    assert_eq!(
        drawn_edges("inventory/foobar.yml"),
        edges([
            ("User's browser", "www/BIND"),
            ("User's browser", "www/nginx"),
            ("www/nginx", "www/gunicorn"),
            ("www/gunicorn", "www/MySQL (MariaDB)"),
        ])
    );
}

/// The HA design's arrows, with the floating address the browser calls
/// and the one the app servers reach the cluster at (the same one when the
/// inventory has no private floating address), and the backup server's.
fn ha(floating: &str, db_floating: &str, backup: bool) -> Edges {
    let webs = ["web1", "web2", "web3"];
    let dbs = ["db1", "db2", "db3"];
    let mut e = edges([
        ("User's browser", "lb1/BIND"),
        ("User's browser", "lb2/BIND secondary"),
        ("User's browser", floating),
        ("lb1/BIND", "lb2/BIND secondary"),
        ("lb1/keepalived", "lb2/keepalived"),
        ("lb2/keepalived", "lb1/keepalived"),
    ]);
    for lb in ["lb1", "lb2"] {
        let part = |p: &str| format!("{lb}/{p}");
        e.insert((floating.into(), part("HAProxy")));
        e.insert((db_floating.into(), part("HAProxy (MariaDB)")));
        for web in webs {
            e.insert((part("HAProxy"), format!("{web}/nginx")));
        }
        for db in dbs {
            e.insert((part("HAProxy (MariaDB)"), format!("{db}/MySQL (MariaDB)")));
        }
    }
    for web in webs {
        e.insert((format!("{web}/nginx"), format!("{web}/gunicorn")));
        e.insert((format!("{web}/gunicorn"), db_floating.into()));
    }
    for a in dbs {
        for b in dbs.iter().filter(|b| **b != a) {
            e.insert((
                format!("{a}/MySQL (MariaDB)"),
                format!("{b}/MySQL (MariaDB)"),
            ));
        }
    }
    if backup {
        // The cluster's last member, and the first app server's uploads.
        e.insert(("backup1/restic".into(), "db3/MySQL (MariaDB)".into()));
        e.insert(("backup1/restic".into(), "web1/code base".into()));
    }
    e
}

#[test]
fn ha_lab_the_browser_and_the_app_servers_call_the_floating_address() {
    assert_eq!(
        drawn_edges("inventory/lab-ha.yml"),
        ha("10.249.0.10", "10.249.0.10", true)
    );
}

#[test]
fn ha_production_the_app_servers_reach_the_cluster_at_the_private_floating_address() {
    assert_eq!(
        drawn_edges("inventory/foobar-ha.yml"),
        ha("8.8.8.8", "10.0.0.10", true)
    );
}

#[test]
fn a_replica_calls_its_primary_and_the_primary_nameserver_its_secondary() {
    assert_eq!(
        drawn_edges("tests/fixtures/lab-pair.yml"),
        edges([
            ("User's browser", "pair1/BIND"),
            ("User's browser", "pair2/BIND secondary"),
            ("User's browser", "pair1/nginx"),
            ("pair1/nginx", "pair1/gunicorn"),
            ("pair1/gunicorn", "pair1/MySQL (MariaDB)"),
            ("pair1/BIND", "pair2/BIND secondary"),
            ("pair2/MariaDB replica", "pair1/MySQL (MariaDB)"),
        ])
    );
}

#[test]
fn a_backup_server_pulls_from_the_database_and_the_uploads() {
    let edges = drawn_edges("inventory/lab-backup.yml");
    for to in ["web1/MySQL (MariaDB)", "web1/code base"] {
        assert!(
            edges.contains(&("backup1/restic".into(), to.into())),
            "{edges:?}"
        );
    }
}
