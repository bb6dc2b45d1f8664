//! The inventory's design drawn the way the design document draws it: the
//! user's browser, DNS (`www` -> the address), and each server with what
//! runs on it, with ports and who talks to whom. SVG written here (plain
//! text, no layout engine needed for boxes in a column), or Mermaid text.

use std::fmt::Write;

use crate::inventory::{Inventory, Server};

/// One thing running on a server: a name, what it does, and the part it
/// sends requests to (an index into the server's parts), with how.
struct Part {
    name: String,
    detail: String,
    calls: Option<(usize, &'static str)>,
}

/// What runs on a server, as its roles draw it, front to back (a role's
/// place in `restart all`: load balancer, web, app, database, DNS).
fn parts(inv: &Inventory, s: &Server) -> Vec<Part> {
    let mut roles: Vec<_> = s.roles.iter().map(|r| r.module()).collect();
    roles.sort_by_key(|r| r.restart_order());
    let drawn: Vec<_> = roles
        .iter()
        .flat_map(|r| r.diagram(inv, s.name.as_str()))
        .collect();
    let index = |name: &str| drawn.iter().position(|p| p.name == name);
    drawn
        .iter()
        .map(|p| Part {
            name: p.name.clone(),
            detail: p.detail.clone(),
            calls: p
                .calls
                .as_ref()
                .and_then(|(to, how)| index(to).map(|i| (i, *how))),
        })
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const WIDTH: u32 = 980;
const PART_H: u32 = 46;

/// The design as SVG.
pub fn svg(inv: &Inventory) -> String {
    let fqdn = inv.domain.fqdn();
    let web = inv.web_address();
    let mut body = String::new();
    let mut y = 70;
    let server_x = 420;
    let mut web_box_y = None;
    for s in &inv.servers.0 {
        let parts = parts(inv, s);
        let h = 44 + parts.len() as u32 * (PART_H + 8);
        if inv.front_server().name == s.name && web_box_y.is_none() {
            web_box_y = Some(y + 60);
        }
        let _ = write!(
            body,
            r##"<rect x="{server_x}" y="{y}" width="530" height="{h}" rx="10" fill="#f4f6fb" stroke="#4a5a80" stroke-width="2"/>
<text x="{tx}" y="{ty}" font-weight="bold">{name} — {addr}</text>
"##,
            tx = server_x + 16,
            ty = y + 28,
            name = escape(s.name.as_str()),
            addr = s.address,
        );
        let top = |i: usize| y + 44 + i as u32 * (PART_H + 8);
        // Arrows go over the boxes: drawn after them.
        let mut arrows = String::new();
        for (i, p) in parts.iter().enumerate() {
            let py = top(i);
            let _ = write!(
                body,
                r##"<rect x="{px}" y="{py}" width="498" height="{PART_H}" rx="6" fill="#ffffff" stroke="#8a9ac0"/>
<text x="{tx}" y="{t1}" font-weight="bold">{name}</text>
<text x="{tx}" y="{t2}" font-size="12" fill="#444">{detail}</text>
"##,
                px = server_x + 16,
                tx = server_x + 28,
                t1 = py + 19,
                t2 = py + 37,
                name = escape(&p.name),
                detail = escape(&p.detail),
            );
            if let Some((to, how)) = p.calls {
                // Down the right edge, from this part to the one it calls.
                let x = server_x + 470 - 18 * (i as u32 % 2);
                let _ = write!(
                    arrows,
                    r##"<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" stroke="#4a5a80" stroke-width="2" marker-end="url(#arrow)"/>
<text x="{tx}" y="{ty}" font-size="11" fill="#4a5a80" text-anchor="end">{how}</text>
"##,
                    y1 = py + PART_H - 4,
                    y2 = top(to) - 1,
                    tx = x - 6,
                    ty = py + PART_H + 6,
                );
            }
        }
        body.push_str(&arrows);
        y += h + 24;
    }
    let height = y.max(330) + 10;
    let web_y = web_box_y.unwrap_or(130);
    let ns: Vec<String> = inv
        .nameservers()
        .iter()
        .map(|(n, a)| format!("{n} ({a})"))
        .collect();
    let scheme = if inv.nginx.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="14">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#4a5a80"/></marker></defs>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="20" y="34" font-size="18" font-weight="bold">{title}</text>
<rect x="20" y="{by}" width="190" height="60" rx="10" fill="#fff7e6" stroke="#b07a1a" stroke-width="2"/>
<text x="36" y="{bt}" font-weight="bold">User's browser</text>
<text x="36" y="{bt2}" font-size="12" fill="#444">{scheme}://{fqdn}</text>
<rect x="20" y="230" width="300" height="76" rx="10" fill="#eef8ee" stroke="#3a7a3a" stroke-width="2"/>
<text x="36" y="254" font-weight="bold">DNS</text>
<text x="36" y="274" font-size="12" fill="#444">{fqdn_e} → A {web}</text>
<text x="36" y="294" font-size="12" fill="#444">{ns}</text>
<line x1="115" y1="{bb}" x2="115" y2="228" stroke="#4a5a80" stroke-width="2" marker-end="url(#arrow)"/>
<text x="124" y="205" font-size="12" fill="#444">1. where is {fqdn_e}?</text>
<line x1="210" y1="{bm}" x2="{sx}" y2="{web_y}" stroke="#4a5a80" stroke-width="2" marker-end="url(#arrow)"/>
<text x="222" y="{lbl}" font-size="12" fill="#444">2. {upper} to {web}</text>
{body}</svg>
"##,
        title = escape(&format!("{fqdn}: the design of this inventory")),
        by = web_y - 30,
        bt = web_y - 6,
        bt2 = web_y + 14,
        bb = web_y + 30,
        bm = web_y,
        lbl = web_y - 12,
        sx = server_x - 2,
        fqdn_e = escape(&fqdn),
        ns = escape(&format!("nameservers: {}", ns.join(", "))),
        upper = scheme.to_uppercase(),
    );
    out
}

/// The design as a Mermaid flowchart.
pub fn mermaid(inv: &Inventory) -> String {
    let fqdn = inv.domain.fqdn();
    let mut out = String::from("flowchart LR\n");
    let _ = writeln!(out, "    browser[\"User's browser\"]");
    let _ = writeln!(
        out,
        "    dns[\"DNS: {fqdn} → {}\"]\n    browser -- \"1. where is {fqdn}?\" --> dns",
        inv.web_address()
    );
    for s in &inv.servers.0 {
        let id = s.name.as_str().replace('-', "_");
        let _ = writeln!(out, "    subgraph {id}[\"{} — {}\"]", s.name, s.address);
        let parts = parts(inv, s);
        for (i, p) in parts.iter().enumerate() {
            let _ = writeln!(out, "        {id}_{i}[\"{}: {}\"]", p.name, p.detail);
            if i > 0 {
                let _ = writeln!(out, "        {id}_{} --> {id}_{i}", i - 1);
            }
        }
        let _ = writeln!(out, "    end");
        if inv.front_server().name == s.name {
            let _ = writeln!(
                out,
                "    browser -- \"2. HTTP to {}\" --> {id}_0",
                inv.web_address()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production() -> Inventory {
        crate::inventory::load(std::path::Path::new("inventory/foobar.yml"))
            .unwrap()
            .inventory
    }

    #[test]
    fn the_design_document_s_parts_are_all_drawn() {
        let svg = svg(&production());
        for text in [
            "User's browser",
            "www.foobar.com → A 8.8.8.8",
            "nginx",
            "gunicorn",
            "code base",
            "MySQL (MariaDB)",
            "BIND",
            "localhost:3306",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        let m = mermaid(&production());
        assert!(m.starts_with("flowchart LR"));
        assert!(m.contains("DNS: www.foobar.com → 8.8.8.8"));
    }
}
