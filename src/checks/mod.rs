//! End-to-end checks, from the machine running foobar: HTTP requests to
//! each web server, one per hop (nginx, app server, database), used after
//! provision and after every restart; and DNS queries (`dns`). They return
//! results and report events; they print nothing.

pub mod dns;
pub mod http;
pub mod replication;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::InputError;
use crate::inventory::{Loaded, Role, Server};
use crate::playbook::{self, Check};
use crate::progress::{Event, Reporter, StepStatus};
use crate::render::{self, Renderer};
use crate::secrets::Secrets;
use crate::transport::{Transport, Unreachable};

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub host: String,
    pub check: String,
    pub hop: String,
    pub passed: bool,
    pub detail: String,
    /// Log lines from the server, when the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// A replica's state, for the replication check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<crate::steps::replica::SlaveStatus>,
}

/// The playbook's checks for one web server, with their Host headers.
pub struct Checks {
    /// Each check with its Host header and whether it goes over HTTPS.
    pub list: Vec<(Check, String, bool)>,
    /// Where the checks connect: the server's address (IP or name).
    pub address: String,
    /// The other addresses the site answers at on this server, checked
    /// after the first, each with what its hops' names start with: its
    /// IPv6 address; for a load balancer, the floating addresses
    /// (whichever load balancer holds them answers).
    pub also: Vec<(String, String)>,
    pub port: u16,
    /// With TLS: its port and the extra roots to trust (the lab's CA).
    pub tls: Option<(u16, Option<Vec<u8>>)>,
}

/// What a failed check through a load balancer shows from it.
const LB_LOGS: &str = "journalctl -u haproxy -n 20 --no-pager";

impl Checks {
    /// The checks of a server that answers for the site (a web server, or
    /// a load balancer in front of them); None for the others.
    pub fn resolve(
        renderer: &Renderer,
        pb: &playbook::Loaded,
        inv: &Loaded,
        server: &Server,
        secrets: &Secrets,
    ) -> Result<Option<Self>, InputError> {
        let through_lb = server.has(Role::Lb);
        if !through_lb && !server.has(Role::Web) {
            return Ok(None);
        }
        let ctx = render::Context::new(&inv.inventory, server, secrets);
        let tls = match &inv.inventory.nginx.tls {
            Some(t) => {
                let ca = match t.acme.as_ref().and_then(|a| a.ca.as_ref()) {
                    Some(path) => {
                        let path = inv.local_path(&path.0);
                        Some(std::fs::read(&path).map_err(|e| {
                            inv.error_at(
                                "nginx.tls.acme.ca",
                                format!("cannot read {}: {e}", path.display()),
                            )
                        })?)
                    }
                    None => None,
                };
                Some((t.listen.0, ca))
            }
            None => None,
        };
        // With TLS every check goes over HTTPS, after one proving that
        // plain HTTP redirects there.
        let https = tls.is_some();
        // Through a load balancer, a failure shows its logs.
        let through = |c: Check| {
            if through_lb {
                Check {
                    hop: format!("HAProxy -> {}", c.hop),
                    logs: Some(LB_LOGS.into()),
                    ..c
                }
            } else {
                c
            }
        };
        let list = pb
            .playbook
            .checks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let field = |name: &str, source: &str| {
                    renderer.field(source, &ctx).map_err(|why| {
                        pb.document
                            .error_at(&format!("checks[{i}].{name}"), format!("{name}: {why}"))
                    })
                };
                let host = match &c.host {
                    Some(h) => field("host", h)?,
                    None => inv.inventory.domain.fqdn(),
                };
                let hop = field("hop", &c.hop)?;
                Ok((through(Check { hop, ..c.clone() }), host, https))
            })
            .collect::<Result<Vec<_>, InputError>>()?;
        let app = &inv.inventory.app;
        let app_checks = app.checks.iter().map(|c| Check {
            name: format!("GET {}", c.path),
            hop: format!("app server ({})", app.kind.name()),
            path: c.path.to_string(),
            host: None,
            expect_status: c.status,
            expect_body: c.contains.clone(),
            logs: Some(format!(
                "journalctl -u {} -n 20 --no-pager; tail -n 5 /var/log/nginx/error.log",
                app.kind.unit()
            )),
        });
        let fqdn = inv.inventory.domain.fqdn();
        let mut list = list;
        list.extend(app_checks.map(|c| (through(c), fqdn.clone(), https)));
        if https {
            let redirect = Check {
                name: "plain HTTP redirects to HTTPS".into(),
                hop: "nginx".into(),
                path: "/".into(),
                host: None,
                expect_status: 301,
                expect_body: None,
                logs: Some("tail -n 20 /var/log/nginx/error.log".into()),
            };
            list.insert(0, (through(redirect), fqdn.clone(), false));
        }
        Ok(Some(Self {
            list,
            address: server.address.to_string(),
            also: also_at(inv, server, through_lb),
            port: inv.inventory.nginx.listen.0,
            tls,
        }))
    }

    /// The end-to-end checks, sent at once; in the playbook's order, the
    /// first failure names its hop and brings the server's log lines, and
    /// the checks after it are not reported.
    pub async fn run<T: Transport>(
        &self,
        transport: &T,
        out: &dyn Reporter,
        secrets: &Secrets,
    ) -> Result<Vec<CheckResult>, Unreachable> {
        let mut results = self
            .run_at(&self.address, "", transport, out, secrets)
            .await?;
        for (address, via) in &self.also {
            if !results.iter().all(|r| r.passed) {
                break;
            }
            if !routable(address, self.port) {
                // A machine on an IPv4-only network cannot check IPv6.
                out.report(Event::StepFinished {
                    host: transport.host().to_string(),
                    step: format!("check: {via}not checked from this machine"),
                    status: StepStatus::Ok,
                    detail: Some(format!("this machine has no route to {address}")),
                });
                continue;
            }
            results.extend(self.run_at(address, via, transport, out, secrets).await?);
        }
        Ok(results)
    }

    /// The checks against one address; `via` starts each hop's name.
    async fn run_at<T: Transport>(
        &self,
        address: &str,
        via: &str,
        transport: &T,
        out: &dyn Reporter,
        secrets: &Secrets,
    ) -> Result<Vec<CheckResult>, Unreachable> {
        let host = transport.host().to_string();
        let names: Vec<&str> = self.list.iter().map(|(_, h, _)| h.as_str()).collect();
        // An IP is taken as it is; a host name is resolved by the system.
        let addr = tokio::net::lookup_host((address, self.port))
            .await
            .ok()
            .and_then(|mut a| a.next());
        let client = |https: bool| match addr {
            Some(mut addr) => {
                let ca = match &self.tls {
                    Some((port, ca)) if https => {
                        addr.set_port(*port);
                        ca.as_deref()
                    }
                    _ => None,
                };
                http::Client::new(addr, &names, https, ca, Duration::from_secs(5))
            }
            None => Err(format!("cannot resolve {address}")),
        };
        let (plain, tls) = (client(false), client(true));
        let verdicts =
            futures_util::future::join_all(self.list.iter().map(|(check, host_header, https)| {
                verdict(if *https { &tls } else { &plain }, check, host_header)
            }))
            .await;
        let mut results = Vec::new();
        for ((check, host_header, https), verdict) in self.list.iter().zip(verdicts) {
            let passed = verdict.is_ok();
            // An app's error page may echo its settings, secrets included.
            let detail = secrets.redact(&verdict.unwrap_or_else(|e| e));
            let logs = match (&check.logs, passed) {
                (Some(cmd), false) => {
                    out.report(Event::Command {
                        host: host.clone(),
                        command: cmd.clone(),
                    });
                    Some(secrets.redact(&transport.run(cmd, None).await?.stdout_text()))
                }
                _ => None,
            };
            let hop = format!("{via}{}", check.hop);
            out.report(Event::StepFinished {
                host: host.clone(),
                step: format!(
                    "check: {} ({hop} {}://{}{})",
                    check.name,
                    if *https { "https" } else { "http" },
                    host_header,
                    check.path
                ),
                status: if passed {
                    StepStatus::Ok
                } else {
                    StepStatus::Failed
                },
                detail: Some(match &logs {
                    Some(l) => format!("{detail}\n--- logs from {host}:\n{}", l.trim_end()),
                    None => detail.clone(),
                }),
            });
            results.push(CheckResult {
                host: host.clone(),
                check: check.name.clone(),
                hop,
                passed,
                detail,
                logs,
                replication: None,
            });
            if !passed {
                break;
            }
        }
        Ok(results)
    }
}

/// Where the site answers on `server` besides its address, each with the
/// start of its hops' names: its IPv6 address when it has one beside an
/// IPv4 one, then a load balancer's floating addresses.
fn also_at(inv: &Loaded, server: &Server, through_lb: bool) -> Vec<(String, String)> {
    let lb = &inv.inventory.lb;
    let own_v6 = server
        .ipv6
        .map(|a| (a.to_string(), format!("IPv6 {a} -> ")));
    let floating = [
        lb.floating_address.map(std::net::IpAddr::V4),
        lb.floating_address_v6.map(std::net::IpAddr::V6),
    ]
    .into_iter()
    .flatten()
    .filter(|_| through_lb)
    .map(|a| (a.to_string(), format!("floating address {a} -> ")));
    own_v6.into_iter().chain(floating).collect()
}

/// This machine has a route to `address` (an IP): connecting a UDP
/// socket asks the routing table and sends nothing.
fn routable(address: &str, port: u16) -> bool {
    let Ok(ip) = address.parse::<std::net::IpAddr>() else {
        return true;
    };
    let any: std::net::IpAddr = match ip {
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    std::net::UdpSocket::bind((any, 0)).is_ok_and(|s| s.connect((ip, port)).is_ok())
}

/// One check's verdict; nginx may still be finishing a reload, so a
/// failure is retried for a few seconds.
async fn verdict(
    client: &Result<http::Client, String>,
    check: &Check,
    host_header: &str,
) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = match client {
            Ok(c) => c.get(host_header, &check.path).await,
            Err(e) => Err(e.clone()),
        };
        let verdict = match answer {
            Ok(r) if r.status != check.expect_status => Err(format!(
                "expected HTTP {}, got {}: {}",
                check.expect_status,
                r.status,
                first_line(&r.body)
            )),
            Ok(r) => match &check.expect_body {
                Some(want) if !r.body.contains(want.as_str()) => Err(format!(
                    "HTTP {} but the body lacks `{want}`: {}",
                    r.status,
                    first_line(&r.body)
                )),
                _ => Ok(format!("HTTP {}", r.status)),
            },
            Err(e) => Err(e),
        };
        if verdict.is_ok() || Instant::now() > deadline {
            return verdict;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}
