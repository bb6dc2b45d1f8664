//! The inventory's design drawn the way the design document draws it, with
//! who calls whom: the user's browser asks the nameservers, then calls the
//! site's address; each server with what runs on it, and every call a
//! part makes, to a part of its own server or of another (a floating
//! address drawn as a box of its own, between the callers and the servers
//! that may hold it). One [`Design`], drawn as SVG (plain text: boxes in a
//! column, calls between servers routed in lanes beside it) or as Mermaid
//! text: both draw the same arrows.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;

use crate::inventory::{Inventory, Role, Server};
use crate::roles::Call;

/// A box arrows start or end at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    /// Left of the servers: the browser (0), then floating addresses.
    Outside(usize),
    Part {
        server: usize,
        part: usize,
    },
}

const BROWSER: Node = Node::Outside(0);

/// A box left of the servers.
struct Outside {
    name: String,
    lines: Vec<String>,
}

/// One thing running on a server, drawn by `role`.
struct PartBox {
    role: Role,
    name: String,
    detail: String,
}

struct ServerBox {
    name: String,
    address: String,
    parts: Vec<PartBox>,
}

/// `from` sends requests to `to`, `how`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edge {
    from: Node,
    to: Node,
    how: String,
}

/// What the diagram draws, whatever the format.
struct Design {
    title: String,
    outside: Vec<Outside>,
    servers: Vec<ServerBox>,
    edges: Vec<Edge>,
}

impl Design {
    fn of(inv: &Inventory) -> Self {
        let fqdn = inv.domain.fqdn();
        let scheme = if inv.nginx.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut calls = Vec::new();
        let servers = inv
            .servers
            .0
            .iter()
            .enumerate()
            .map(|(server, s)| {
                // Front to back: a role's place in `restart all` (load
                // balancer, web, app, database, DNS, backup).
                let mut roles: Vec<Role> = s.roles.iter().copied().collect();
                roles.sort_by_key(|r| r.module().restart_order());
                let mut parts = Vec::new();
                for role in roles {
                    for p in role.module().diagram(inv, s.name.as_str()) {
                        let from = Node::Part {
                            server,
                            part: parts.len(),
                        };
                        calls.extend(p.calls.into_iter().map(|c| (from, c)));
                        parts.push(PartBox {
                            role,
                            name: p.name,
                            detail: p.detail,
                        });
                    }
                }
                ServerBox {
                    name: s.name.to_string(),
                    address: s.address.to_string(),
                    parts,
                }
            })
            .collect();
        let mut design = Design {
            title: format!("{fqdn}: the design of this inventory"),
            outside: vec![Outside {
                name: "User's browser".into(),
                lines: vec![format!("{scheme}://{fqdn}")],
            }],
            servers,
            edges: Vec::new(),
        };
        // The browser asks the nameservers, then calls the site's address.
        for s in inv.nameserver_hosts() {
            let to = design.part_of(inv, s, &[Role::Dns, Role::DnsSecondary]);
            design.edge(BROWSER, to, format!("1. where is {fqdn}?"));
        }
        let front: Vec<&Server> = match inv.lb.floating_address {
            Some(_) => inv.servers_with(Role::Lb).collect(),
            None => vec![inv.front_server()],
        };
        let front_part = design.part_of(inv, front[0], &[Role::Lb, Role::Web]);
        let http = Call {
            part: design.name(front_part).to_string(),
            on: front.iter().map(|s| s.name.to_string()).collect(),
            via: inv.lb.floating_address.map(IpAddr::V4),
            how: format!("2. {}", scheme.to_uppercase()),
        };
        design.call(inv, BROWSER, http);
        for (from, call) in calls {
            design.call(inv, from, call);
        }
        design
    }

    fn server_index(inv: &Inventory, name: &str) -> usize {
        inv.servers
            .0
            .iter()
            .position(|s| s.name.as_str() == name)
            .expect("roles call servers of the inventory")
    }

    /// The first part drawn on `s` by one of `roles`.
    fn part_of(&self, inv: &Inventory, s: &Server, roles: &[Role]) -> Node {
        let server = Self::server_index(inv, s.name.as_str());
        let part = self.servers[server]
            .parts
            .iter()
            .position(|p| roles.contains(&p.role))
            .expect("a server draws a part for each of its roles");
        Node::Part { server, part }
    }

    fn name(&self, n: Node) -> &str {
        match n {
            Node::Outside(i) => &self.outside[i].name,
            Node::Part { server, part } => &self.servers[server].parts[part].name,
        }
    }

    fn edge(&mut self, from: Node, to: Node, how: String) {
        let edge = Edge { from, to, how };
        if !self.edges.contains(&edge) {
            self.edges.push(edge);
        }
    }

    /// `from`'s call: to the part on each server, or to the floating
    /// address and from there to the part on each server that may hold it.
    fn call(&mut self, inv: &Inventory, from: Node, call: Call) {
        let from = match call.via {
            Some(address) => {
                let to = self.floating(address, &call.on);
                self.edge(from, to, call.how.clone());
                to
            }
            None => from,
        };
        for name in &call.on {
            let server = Self::server_index(inv, name);
            let part = self.servers[server]
                .parts
                .iter()
                .position(|p| p.name == call.part)
                .expect("roles call parts that are drawn");
            self.edge(from, Node::Part { server, part }, call.how.clone());
        }
    }

    /// The box of a floating address, made on first use.
    fn floating(&mut self, address: IpAddr, holders: &[String]) -> Node {
        let name = address.to_string();
        let index = match self.outside.iter().position(|o| o.name == name) {
            Some(index) => index,
            None => {
                let holders = match holders {
                    [one] => one.clone(),
                    [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
                    [] => String::new(),
                };
                self.outside.push(Outside {
                    name,
                    lines: vec![
                        "floating address, held by".into(),
                        format!("{holders} (keepalived)"),
                    ],
                });
                self.outside.len() - 1
            }
        };
        Node::Outside(index)
    }

    /// A call that goes the other way too (Galera, VRRP).
    fn mutual(&self, e: &Edge) -> bool {
        self.edges
            .iter()
            .any(|r| r.from == e.to && r.to == e.from && r.how == e.how)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

impl Rect {
    fn right(&self) -> u32 {
        self.x + self.w
    }
    fn bottom(&self) -> u32 {
        self.y + self.h
    }
}

const TOP: u32 = 70;
const OUTSIDE_X: u32 = 20;
const OUTSIDE_W: u32 = 230;
const SERVER_X: u32 = 560;
const SERVER_W: u32 = 600;
const PART_X: u32 = SERVER_X + 16;
const PART_W: u32 = SERVER_W - 32;
const PART_H: u32 = 46;
/// Between lanes, room for a lane's label beside it.
const LANE: u32 = 18;
const LEFT_LANES_X: u32 = OUTSIDE_X + OUTSIDE_W + 16;
const RIGHT_LANES_X: u32 = SERVER_X + SERVER_W + 20;

/// Where every box is.
struct Layout {
    frames: Vec<Rect>,
    parts: Vec<Vec<Rect>>,
    outside: Vec<Rect>,
}

impl Layout {
    fn of(d: &Design) -> Self {
        let mut y = TOP;
        let mut frames = Vec::new();
        let mut parts = Vec::new();
        for s in &d.servers {
            let h = 44 + s.parts.len() as u32 * (PART_H + 8);
            frames.push(Rect {
                x: SERVER_X,
                y,
                w: SERVER_W,
                h,
            });
            parts.push(
                (0..s.parts.len() as u32)
                    .map(|i| Rect {
                        x: PART_X,
                        y: y + 44 + i * (PART_H + 8),
                        w: PART_W,
                        h: PART_H,
                    })
                    .collect(),
            );
            y += h + 24;
        }
        // Down the left, the browser first.
        let mut y = TOP;
        let outside = d
            .outside
            .iter()
            .map(|o| {
                let r = Rect {
                    x: OUTSIDE_X,
                    y,
                    w: OUTSIDE_W,
                    h: 36 + 20 * o.lines.len() as u32,
                };
                y = r.bottom() + 50;
                r
            })
            .collect();
        Layout {
            frames,
            parts,
            outside,
        }
    }

    fn rect(&self, n: Node) -> Rect {
        match n {
            Node::Outside(i) => self.outside[i],
            Node::Part { server, part } => self.parts[server][part],
        }
    }

    fn bottom(&self) -> u32 {
        self.frames
            .iter()
            .chain(&self.outside)
            .map(Rect::bottom)
            .max()
            .unwrap_or(TOP)
    }
}

/// Which side of the servers an arrow runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gutter {
    /// Between the boxes on the left and the servers.
    Left,
    /// Right of the servers: calls between parts not next to each other.
    Right,
}

/// How an arrow is drawn.
enum Route {
    /// Straight down (or up) between two boxes of one column.
    Straight,
    /// Along the lane of a bus of arrows (by index) in a gutter.
    Lane(usize),
}

/// The arrows' routes. Arrows with the same words from callers that call
/// the same set of parts share a lane (a bus): every caller on it calls
/// every part on it, so sharing draws nothing untrue. So do calls that go
/// both ways among a set of parts (a Galera cluster).
fn routes(d: &Design) -> (Vec<Route>, Vec<(Gutter, String)>) {
    let mut buses: Vec<(Gutter, String, bool, BTreeSet<Node>)> = Vec::new();
    let routes = d
        .edges
        .iter()
        .map(|e| {
            let gutter = match (e.from, e.to) {
                (Node::Outside(_), Node::Outside(_)) => return Route::Straight,
                (Node::Outside(_), _) | (_, Node::Outside(_)) => Gutter::Left,
                (Node::Part { server: a, part: i }, Node::Part { server: b, part: j }) => {
                    if a == b && i.abs_diff(j) == 1 {
                        return Route::Straight;
                    }
                    Gutter::Right
                }
            };
            let mutual = d.mutual(e);
            let mut set: BTreeSet<Node> = d
                .edges
                .iter()
                .filter(|o| o.from == e.from && o.how == e.how)
                .map(|o| o.to)
                .collect();
            if mutual {
                set.insert(e.from);
            }
            let key = (gutter, e.how.clone(), mutual, set);
            let bus = match buses.iter().position(|b| *b == key) {
                Some(bus) => bus,
                None => {
                    buses.push(key);
                    buses.len() - 1
                }
            };
            Route::Lane(bus)
        })
        .collect();
    (
        routes,
        buses.into_iter().map(|(g, how, _, _)| (g, how)).collect(),
    )
}

/// The design as SVG.
pub fn svg(inv: &Inventory) -> String {
    let d = Design::of(inv);
    let layout = Layout::of(&d);
    let (routes, buses) = routes(&d);
    let on_bus = |bus: usize| {
        d.edges
            .iter()
            .zip(&routes)
            .filter(move |(_, r)| matches!(r, Route::Lane(b) if *b == bus))
            .map(|(e, _)| e)
    };
    // A bus touches a box on its side towards the bus's gutter (a box on
    // the left: its right side); the buses touching one side of a box
    // are spread along it.
    let right_side = |n: Node, bus: usize| match n {
        Node::Outside(_) => true,
        Node::Part { .. } => buses[bus].0 == Gutter::Right,
    };
    let mut sides: Vec<(Node, bool, usize)> = Vec::new();
    for bus in 0..buses.len() {
        for e in on_bus(bus) {
            for n in [e.from, e.to] {
                if !sides.contains(&(n, right_side(n, bus), bus)) {
                    sides.push((n, right_side(n, bus), bus));
                }
            }
        }
    }
    let stub = |n: Node, bus: usize| {
        let right = right_side(n, bus);
        let on_side: Vec<usize> = sides
            .iter()
            .filter(|(m, r, _)| *m == n && *r == right)
            .map(|(_, _, b)| *b)
            .collect();
        let k = on_side.iter().position(|b| *b == bus).unwrap_or(0) as u32;
        let r = layout.rect(n);
        let y = r.y + r.h * (k + 1) / (on_side.len() as u32 + 1);
        (if right { r.right() } else { r.x }, y)
    };
    let extent = |bus: usize| {
        let ys: Vec<u32> = on_bus(bus)
            .flat_map(|e| [stub(e.from, bus).1, stub(e.to, bus).1])
            .collect();
        (
            ys.iter().copied().min().unwrap_or(0),
            ys.iter().copied().max().unwrap_or(0),
        )
    };
    // In each gutter, the shortest buses nearest the servers.
    let mut lane_x = vec![0u32; buses.len()];
    let mut right_lanes = 0;
    for gutter in [Gutter::Left, Gutter::Right] {
        let mut order: Vec<usize> = (0..buses.len()).filter(|b| buses[*b].0 == gutter).collect();
        order.sort_by_key(|b| {
            let (lo, hi) = extent(*b);
            hi - lo
        });
        for (k, bus) in order.iter().enumerate() {
            lane_x[*bus] = match gutter {
                Gutter::Left => LEFT_LANES_X + LANE * (order.len() - 1 - k) as u32,
                Gutter::Right => RIGHT_LANES_X + LANE * k as u32,
            };
        }
        if gutter == Gutter::Right {
            right_lanes = order.len() as u32;
        }
    }

    let mut boxes = String::new();
    for (i, o) in d.outside.iter().enumerate() {
        let r = layout.outside[i];
        let (fill, stroke) = if Node::Outside(i) == BROWSER {
            ("#fff7e6", "#b07a1a")
        } else {
            ("#eef8ee", "#3a7a3a")
        };
        let _ = writeln!(
            boxes,
            r##"<rect x="{}" y="{}" width="{}" height="{}" rx="10" fill="{fill}" stroke="{stroke}" stroke-width="2"/>
<text x="{}" y="{}" font-weight="bold">{}</text>"##,
            r.x,
            r.y,
            r.w,
            r.h,
            r.x + 16,
            r.y + 24,
            escape(&o.name),
        );
        for (l, line) in o.lines.iter().enumerate() {
            let _ = writeln!(
                boxes,
                r##"<text x="{}" y="{}" font-size="12" fill="#444">{}</text>"##,
                r.x + 16,
                r.y + 44 + 20 * l as u32,
                escape(line)
            );
        }
    }
    for (si, s) in d.servers.iter().enumerate() {
        let f = layout.frames[si];
        let _ = writeln!(
            boxes,
            r##"<rect x="{}" y="{}" width="{}" height="{}" rx="10" fill="#f4f6fb" stroke="#4a5a80" stroke-width="2"/>
<text x="{}" y="{}" font-weight="bold">{} — {}</text>"##,
            f.x,
            f.y,
            f.w,
            f.h,
            f.x + 16,
            f.y + 28,
            escape(&s.name),
            escape(&s.address),
        );
        for (pi, p) in s.parts.iter().enumerate() {
            let r = layout.parts[si][pi];
            let _ = writeln!(
                boxes,
                r##"<rect x="{}" y="{}" width="{}" height="{}" rx="6" fill="#ffffff" stroke="#8a9ac0"/>
<text x="{tx}" y="{}" font-weight="bold">{}</text>
<text x="{tx}" y="{}" font-size="12" fill="#444">{}</text>"##,
                r.x,
                r.y,
                r.w,
                r.h,
                r.y + 19,
                escape(&p.name),
                r.y + 37,
                escape(&p.detail),
                tx = r.x + 12,
            );
        }
    }

    // Arrows go over the boxes: drawn after them, each a path from the
    // caller's box to the called one's, its words beside it.
    let mut arrows = String::new();
    let mut words = |x: u32, y: u32, anchor: &str, rotate: bool, how: &str| {
        let transform = if rotate {
            format!(r#" transform="rotate(-90 {x} {y})""#)
        } else {
            String::new()
        };
        let _ = writeln!(
            arrows,
            r##"<text x="{x}" y="{y}" font-size="11" fill="#4a5a80" text-anchor="{anchor}"{transform}>{}</text>"##,
            escape(how)
        );
    };
    let mut paths = Vec::new();
    for (e, route) in d.edges.iter().zip(&routes) {
        let (from, to) = (layout.rect(e.from), layout.rect(e.to));
        match route {
            // Down (or up) from one box of a column to the next.
            Route::Straight => {
                let x = match e.from {
                    Node::Outside(_) => from.x + from.w / 2,
                    Node::Part { .. } => from.right() - 40,
                };
                let (y1, y2) = if to.y > from.y {
                    (from.bottom(), to.y - 1)
                } else {
                    (from.y, to.bottom() + 1)
                };
                words(
                    x - 6,
                    y1.min(y2) + y1.abs_diff(y2) / 2 + 4,
                    "end",
                    false,
                    &e.how,
                );
                paths.push(vec![(x, y1), (x, y2)]);
            }
            // Out to the bus's lane, along it, and in.
            Route::Lane(bus) => {
                let x = lane_x[*bus];
                let (a, b) = (stub(e.from, *bus), stub(e.to, *bus));
                paths.push(vec![a, (x, a.1), (x, b.1), b]);
            }
        }
    }
    for (bus, (gutter, how)) in buses.iter().enumerate() {
        match gutter {
            // Along the lane, once.
            Gutter::Right => {
                let (lo, hi) = extent(bus);
                words(lane_x[bus] - 5, (lo + hi) / 2, "middle", true, how);
            }
            // Over its end at each part, outside the server.
            Gutter::Left => {
                let ends: BTreeSet<Node> = on_bus(bus)
                    .flat_map(|e| [e.from, e.to])
                    .filter(|n| matches!(n, Node::Part { .. }))
                    .collect();
                for n in ends {
                    words(SERVER_X - 6, stub(n, bus).1 - 4, "end", false, how);
                }
            }
        }
    }
    for points in paths {
        let points: Vec<String> = points.iter().map(|(x, y)| format!("{x},{y}")).collect();
        let _ = writeln!(
            arrows,
            r##"<path d="M{}" fill="none" stroke="#4a5a80" stroke-width="2" marker-end="url(#arrow)"/>"##,
            points.join(" L")
        );
    }

    let width = RIGHT_LANES_X + LANE * right_lanes + 10;
    let height = layout.bottom() + 20;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="14">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#4a5a80"/></marker></defs>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="20" y="34" font-size="18" font-weight="bold">{title}</text>
{boxes}{arrows}</svg>
"##,
        title = escape(&d.title),
    )
}

/// The design as a Mermaid flowchart.
pub fn mermaid(inv: &Inventory) -> String {
    let d = Design::of(inv);
    let server_id = |s: &ServerBox| s.name.replace('-', "_");
    let id = |n: Node| match n {
        BROWSER => "browser".to_string(),
        Node::Outside(i) => format!("addr_{}", d.outside[i].name.replace(['.', ':'], "_")),
        Node::Part { server, part } => format!("{}_{part}", server_id(&d.servers[server])),
    };
    let mut out = String::from("flowchart LR\n");
    for (i, o) in d.outside.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {}[\"{}: {}\"]",
            id(Node::Outside(i)),
            o.name,
            o.lines.join(" ")
        );
    }
    for (server, s) in d.servers.iter().enumerate() {
        let _ = writeln!(
            out,
            "    subgraph {}[\"{} — {}\"]",
            server_id(s),
            s.name,
            s.address
        );
        for (part, p) in s.parts.iter().enumerate() {
            let _ = writeln!(
                out,
                "        {}[\"{}: {}\"]",
                id(Node::Part { server, part }),
                p.name,
                p.detail
            );
        }
        let _ = writeln!(out, "    end");
    }
    for e in &d.edges {
        if !d.mutual(e) {
            let _ = writeln!(out, "    {} -- \"{}\" --> {}", id(e.from), e.how, id(e.to));
        } else if e.from < e.to {
            // Both ways: one line, arrows at both ends.
            let _ = writeln!(out, "    {} <-- \"{}\" --> {}", id(e.from), e.how, id(e.to));
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
            "https://www.foobar.com",
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
        assert!(m.contains("browser -- \"1. where is www.foobar.com?\" --> www_4"));
    }
}
