//! The HA design on nine lab servers (inventory/lab-ha.yml): two HAProxy
//! load balancers sharing a floating address (keepalived), three web/app
//! servers, a MariaDB Galera cluster of three, a backup server. Provisioned
//! from pristine servers; rolling restarts, killed servers and a power cut
//! of the whole cluster under a load loop, with every request counted.
//! HTTPS through the load balancers too; the cluster restored to a moment.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::lab::*;
use common::*;
use serde_json::Value;

const HA: &str = "inventory/lab-ha.yml";
const FLOATING: &str = "10.249.0.10";
/// `lb.floating_address_v6`: moves with FLOATING.
const FLOATING_V6: &str = "fd00:fb:af9::a";
const SERVERS: [&str; 9] = [
    "lb1", "lb2", "web1", "web2", "web3", "db1", "db2", "db3", "backup1",
];
const MEMBERS: [&str; 3] = ["db1", "db2", "db3"];
const WEBS: [&str; 3] = ["web1", "web2", "web3"];

/// The HA lab provisioned once per test binary, from pristine servers.
fn ha_lab_ready() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        lab_up(HA);
        for s in SERVERS {
            foobar()
                .args(["-i", HA, "lab", "reset", s])
                .assert()
                .success();
        }
        let (code, json, err) = provision(HA).json();
        assert_eq!(code, Some(0), "{err}{json}");
        first_scheduled_backup_done();
    });
}

/// Asks `probe` every 2 s until it answers Ok, for at most `within`;
/// fails with its last answer.
fn poll<T>(within: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(found) => return found,
            Err(last) => assert!(start.elapsed() < within, "{last}"),
        }
        thread::sleep(Duration::from_secs(2));
    }
}

/// The backup timer's first run (a minute after it starts) over, so that
/// it neither lands in a test that stops members nor leaves `status`
/// without a fresh backup.
fn first_scheduled_backup_done() {
    poll(Duration::from_secs(300), || {
        let state = on_server_ok(
            HA,
            "backup1",
            "systemctl show -p LastTriggerUSec --value foobar-backup.timer; systemctl is-active foobar-backup.service || true",
        );
        let mut lines = state.lines();
        let triggered = lines
            .next()
            .is_some_and(|t| !t.trim().is_empty() && t.trim() != "n/a");
        if triggered && lines.next().map(str::trim) != Some("activating") {
            Ok(())
        } else {
            Err(format!("the first scheduled backup did not end: {state}"))
        }
    });
    let (code, status, err) = status_json();
    assert_eq!(
        code,
        Some(0),
        "a fresh backup after the first: {err}{status}"
    );
}

/// db3, the backups' source, refilled whole (since `since`, Unix time):
/// its binary log starts again, without the place the backup server's
/// stream was at. That history ends (kept aside as a gap, until the
/// retention forgets its backups: here, all of this hour's but the
/// newest), the stream follows db3's new log, and a full backup, taken
/// at once, begins the new history: `status` is healthy.
fn stream_goes_on_after_a_gap(since: i64) {
    let start = Instant::now();
    let script = format!(
        "journalctl -u foobar-binlog --since @{since} -o cat --no-pager | sed -n 's/.*history kept aside in .*gap-[0-9TZ]*-\\([0-9TZ]*\\),.*/\\1/p' | tail -n 1; \
         cut -d ' ' -f 1 /var/lib/foobar/backup/state/last-db; \
         systemctl is-active foobar-binlog; systemctl show -P ActiveState foobar-backup.service; true"
    );
    poll(Duration::from_secs(180), || {
        let state = on_server_ok(HA, "backup1", &script);
        let lines: Vec<&str> = state.lines().collect();
        if let [ended, backup, "active", "inactive"] = lines[..] {
            // Both as the stream names times: `YYYYMMDDThhmmssZ`, UTC.
            let backup = jiff::Timestamp::from_second(backup.parse().unwrap())
                .unwrap()
                .strftime("%Y%m%dT%H%M%SZ")
                .to_string();
            if backup.as_str() >= ended {
                eprintln!(
                    "after db3's refill: the gap found at {ended}, a new backup at {backup}, {:?} in all",
                    start.elapsed()
                );
                return Ok(());
            }
        }
        Err(format!("no new history after db3's refill: {state}"))
    });
    let (code, status, err) = status_json();
    assert_eq!(code, Some(0), "{err}{status}");
}

/// GET through the floating address: (status, body), or what went wrong.
fn get(path: &str) -> Result<(u16, String), String> {
    get_at(FLOATING, path)
}

fn get_at(address: &str, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::new(address.parse().unwrap(), 80),
        Duration::from_secs(5),
    )
    .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: www.foobar.com\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {raw:?}"))?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Requests through the floating address in a loop until stopped:
/// (requests, failures with what they were); maintenance pages counted
/// apart.
struct Load {
    stop: Arc<AtomicBool>,
    maintenance: Arc<AtomicUsize>,
    threads: Vec<thread::JoinHandle<(usize, Vec<String>)>>,
}

impl Load {
    fn start(connections: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let maintenance = Arc::new(AtomicUsize::new(0));
        let threads = (0..connections)
            .map(|_| {
                let stop = stop.clone();
                let maintenance = maintenance.clone();
                thread::spawn(move || {
                    let (mut sent, mut failed) = (0, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        sent += 1;
                        match get("/visits") {
                            Ok((200, _)) => {}
                            // The maintenance page, from nginx (not HAProxy's own 503).
                            Ok((503, body)) if body.contains("under maintenance") => {
                                maintenance.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok((status, body)) => failed.push(format!("HTTP {status}: {body}")),
                            Err(e) => failed.push(e),
                        }
                    }
                    (sent, failed)
                })
            })
            .collect();
        Self {
            stop,
            maintenance,
            threads,
        }
    }

    fn maintenance_pages(&self) -> usize {
        self.maintenance.load(Ordering::Relaxed)
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().map(|t| t.join().unwrap()).fold(
            (0, Vec::new()),
            |(n, mut f), (m, g)| {
                f.extend(g);
                (n + m, f)
            },
        )
    }
}

/// A web server's state in HAProxy on `lb`: UP, DOWN, DRAIN, MAINT, ...
fn state_at(lb: &str, web: &str) -> String {
    on_server_ok(
        HA,
        lb,
        &format!(
            "echo 'show stat' | socat stdio /run/haproxy/admin.sock | awk -F, '$1 == \"web\" && $2 == \"{web}\" {{ print $18 }}'"
        ),
    )
    .trim()
    .to_string()
}

fn wait_for_state(lb: &str, web: &str, want: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if state_at(lb, web).starts_with(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{web} is {} at {lb}, not {want}, after {within:?}",
            state_at(lb, web)
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// A restart of the HA lab, forced (whatever the hour).
fn restart(args: &[&str]) -> (Option<i32>, Value, String) {
    restart_json(HA, &[args, &["--force"]].concat())
}

#[test]
fn ha_stack_converges_and_every_hop_answers() {
    let _turn = lab_turn();
    ha_lab_ready();
    let (code, json, err) = provision(HA).json();
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(
        json["totals"]["changed"], 0,
        "a rerun changes nothing: {json}"
    );
    let checks = json["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["passed"] == true), "{json}");
    for host in ["lb1", "lb2", "web1", "web2", "web3"] {
        let on_host: Vec<_> = checks.iter().filter(|c| c["host"] == host).collect();
        // Each load balancer is checked at its own and the floating
        // address, each over IPv4 and IPv6.
        let expected = if host.starts_with("lb") { 20 } else { 5 };
        assert_eq!(
            on_host.len(),
            expected,
            "every hop checked on {host}: {json}"
        );
        let through_lb = on_host[0]["hop"]
            .as_str()
            .unwrap()
            .starts_with("HAProxy -> ");
        assert_eq!(through_lb, host.starts_with("lb"), "{json}");
    }
    // One load balancer holds the floating address; www points at it.
    let holders: Vec<_> = ["lb1", "lb2"]
        .into_iter()
        .filter(|lb| {
            on_server_ok(HA, lb, "ip -4 -o addr show dev eth0").contains(&format!("{FLOATING}/24"))
        })
        .collect();
    assert_eq!(holders.len(), 1, "{holders:?}");
    let zone = on_server_ok(HA, "lb1", "cat /var/lib/bind/db.foobar.com");
    assert!(zone.contains(&format!("www IN A {FLOATING}")), "{zone}");
    assert_eq!(get("/healthz").map(|(s, _)| s), Ok(200));

    // MariaDB listens on each member's private address only, and the app
    // user may connect from the load balancers only (HAProxy's side).
    let listening = on_server_ok(HA, "db1", "ss -Htln 'sport = :3306'");
    assert!(listening.contains("10.249.0.31:3306"), "{listening}");
    assert!(
        !listening.contains("0.0.0.0:3306") && !listening.contains("*:3306"),
        "{listening}"
    );
    let hosts = on_server_ok(
        HA,
        "db1",
        "mysql -N -B -e \"SELECT Host FROM mysql.user WHERE User='foobar' ORDER BY Host\"",
    );
    assert_eq!(
        hosts.split_whitespace().collect::<Vec<_>>(),
        ["10.249.0.11", "10.249.0.12"]
    );

    // Every member is Synced in a primary component of three; the load
    // balancer that holds the floating address writes to one of them.
    let (code, status, err) = status_json();
    assert_eq!(code, Some(0), "{err}{status}");
    for member in MEMBERS {
        let cluster = &server_in(&status, member)["cluster"];
        assert_eq!(cluster["state"], "Synced", "{member}: {status}");
        assert_eq!(cluster["component"], "Primary", "{member}: {status}");
        assert_eq!(cluster["size"], 3, "{member}: {status}");
    }
    let count = visits();
    let writer = writer(&status);
    assert!(MEMBERS.contains(&writer.as_str()), "{status}");

    // TLS between servers: group traffic by the cluster CA's
    // certificates; a plaintext login refused, one over TLS verified
    // against the CA the app servers hold; keys 0600 here and there.
    let provider = on_server_ok(
        HA,
        "db1",
        "mysql -N -B -e \"SHOW GLOBAL VARIABLES LIKE 'wsrep_provider_options'\"",
    );
    assert!(provider.contains("socket.ssl = YES"), "{provider}");
    let login = |tls: &str| {
        on_server(
            HA,
            "web1",
            &format!(
                "set -a; . /etc/foobar/app.env; python3 -c \"import os, pymysql; pymysql.connect(host=os.environ['DB_HOST'], user=os.environ['DB_USER'], password=os.environ['DB_PASSWORD'], database=os.environ['DB_NAME']{tls}).cursor().execute('SELECT 1')\""
            ),
        )
    };
    assert!(
        login(", ssl={'ca': os.environ['DB_SSL_CA']}")
            .status
            .success(),
        "a TLS login verified against the cluster's CA"
    );
    assert!(!login("").status.success(), "a plaintext login is refused");
    let key = on_server_ok(
        HA,
        "db1",
        "stat -c '%a %U' /etc/mysql/foobar-tls/member.key",
    );
    assert_eq!(key.trim(), "600 mysql");
    let ca = std::fs::metadata("/var/lib/foobar/lab-ha/db-ca/ca.key").unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&ca.permissions()) & 0o777,
        0o600
    );

    // A row written through the app is on every member at once
    // (synchronous replication: certified by all before it commits).
    for member in MEMBERS {
        let seen = on_server_ok(
            HA,
            member,
            "mysql -N -B -e 'SELECT count FROM foobar.visits WHERE id = 1'",
        );
        assert_eq!(seen.trim().parse::<u64>().ok(), Some(count), "{member}");
    }
}

/// `status --json`: (exit code, document, stderr).
fn status_json() -> (Option<i32>, Value, String) {
    run_json(HA, "status", &[])
}

fn server_in<'a>(status: &'a Value, host: &str) -> &'a Value {
    status["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["host"] == host)
        .unwrap_or_else(|| panic!("{host} in {status}"))
}

/// The member the load balancer holding the floating address sends the
/// writes to, as status reports it.
fn writer(status: &Value) -> String {
    let holder = ["lb1", "lb2"]
        .into_iter()
        .find(|lb| {
            on_server(HA, lb, "ip -4 -o addr show dev eth0")
                .stdout
                .windows(FLOATING.len() + 1)
                .any(|w| w == format!("{FLOATING}/").as_bytes())
        })
        .expect("a load balancer holds the floating address");
    server_in(status, holder)["cluster_writer"]
        .as_str()
        .unwrap_or_else(|| panic!("no writer at {holder}: {status}"))
        .to_string()
}

/// A visit counted through the floating address: the new count.
#[track_caller]
fn visits() -> u64 {
    let (status, body) = get("/visits").unwrap();
    assert_eq!(status, 200, "{body}");
    count_in(&body)
}

#[track_caller]
fn count_in(body: &str) -> u64 {
    body.split("\"visits\": ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{body}"))
}

/// A visit counted once the load balancers have seen members stopped by
/// hand (not drained by foobar): until their checks mark them down (two,
/// a second apart) a new connection may still be sent to one.
#[track_caller]
fn visits_after_members_stopped() -> u64 {
    let start = Instant::now();
    let mut failed = Vec::new();
    loop {
        match get("/visits") {
            Ok((200, body)) => return count_in(&body),
            other => failed.push(format!("{:?}: {other:?}", start.elapsed())),
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{failed:#?}");
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn rolling_restarts_drop_no_request() {
    let _turn = lab_turn();
    ha_lab_ready();
    for target in ["app", "web", "lb"] {
        let load = Load::start(4);
        thread::sleep(Duration::from_millis(500));
        let (code, json, err) = restart(&[target]);
        thread::sleep(Duration::from_millis(500));
        let (sent, failed) = load.finish();
        assert_eq!(code, Some(0), "restart {target}: {err}{json}");
        assert!(sent > 50, "restart {target}: only {sent} requests");
        assert!(
            failed.is_empty(),
            "restart {target}: {} of {sent} failed: {failed:?}",
            failed.len()
        );
        let services = json["services"].as_array().unwrap();
        if target == "lb" {
            assert_eq!(services.len(), 2, "{json}");
        } else {
            let drained: Vec<_> = services.iter().filter(|s| s["method"] == "drain").collect();
            assert_eq!(drained.len(), 3, "each web server left the pool: {json}");
            assert!(drained.iter().all(|s| s["ok"] == true), "{json}");
        }
    }
    for web in WEBS {
        assert_eq!(state_at("lb1", web), "UP");
        assert_eq!(state_at("lb2", web), "UP");
    }
}

/// `restart db`: one member at a time out of HAProxy's pool, restarted,
/// Synced, back in; the others keep the site writing: no maintenance
/// page, no failed request.
#[test]
fn restart_db_rolls_over_the_cluster_without_a_failed_request() {
    let _turn = lab_turn();
    ha_lab_ready();
    let load = Load::start(4);
    thread::sleep(Duration::from_millis(500));
    let (code, json, err) = restart(&["db"]);
    thread::sleep(Duration::from_millis(500));
    let pages = load.maintenance_pages();
    let (sent, failed) = load.finish();
    assert_eq!(code, Some(0), "{err}{json}");
    assert!(sent > 50, "only {sent} requests");
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}",
        failed.len()
    );
    assert_eq!(pages, 0, "no maintenance page");
    let services = json["services"].as_array().unwrap();
    let out_of_pool: Vec<&str> = services
        .iter()
        .filter(|s| s["service"].as_str().unwrap().starts_with("haproxy mysql/"))
        .map(|s| s["host"].as_str().unwrap())
        .collect();
    assert_eq!(out_of_pool, MEMBERS, "one at a time, in order: {json}");
    assert!(services.iter().all(|s| s["ok"] == true), "{json}");
    // The backup server's stream from db3 was cut by db3's restart: it
    // connects again within seconds (the unit restarts 3 s after), until
    // then `status` truthfully says it is not streaming.
    poll(Duration::from_secs(30), || match status_json() {
        (Some(0), _, _) => Ok(()),
        (_, status, err) => Err(format!("{err}{status}")),
    });
}

/// Any member killed under writes: the others keep taking them (the
/// writer's loss costs at most the requests in flight on it); it rejoins
/// by `lab up` + `provision`. Then a power cut of the whole cluster, and
/// every member stopped in turn with the last one ahead: `provision`
/// starts the cluster from the most advanced member only, and no
/// acknowledged write is lost. A lone member refuses writes.
#[test]
fn the_cluster_survives_any_member_lost_and_a_power_cut() {
    let _turn = lab_turn();
    ha_lab_ready();
    let up_and_converged = || {
        foobar().args(["-i", HA, "lab", "up"]).assert().success();
        let (code, json, err) = provision(HA).json();
        assert_eq!(code, Some(0), "{err}{json}");
        json
    };
    for _ in MEMBERS {
        let (_, status, _) = status_json();
        let killed_writer = writer(&status);
        let load = Load::start(4);
        thread::sleep(Duration::from_millis(500));
        foobar()
            .args(["-i", HA, "lab", "kill", &killed_writer])
            .assert()
            .success();
        let killed = Instant::now();
        // The load balancers take it out: two failed checks a second apart.
        while !on_server_ok(
            HA,
            "lb1",
            "echo 'show stat' | socat stdio /run/haproxy/admin.sock",
        )
        .lines()
        .any(|l| l.starts_with(&format!("mysql,{killed_writer},")) && l.contains(",DOWN,"))
        {
            assert!(
                killed.elapsed() < Duration::from_secs(10),
                "{killed_writer} never marked down"
            );
            thread::sleep(Duration::from_millis(100));
        }
        let window = killed.elapsed();
        thread::sleep(Duration::from_secs(2));
        let (sent, failed) = load.finish();
        eprintln!(
            "writer {killed_writer} killed: marked down after {window:?}; {} of {sent} requests failed: {failed:?}",
            failed.len()
        );
        // What fails: the requests in flight on the dead writer, and a
        // connection begun in the moment before HAProxy takes it out (4
        // clients: a bound of twice that).
        assert!(
            failed.len() <= 8,
            "at most the requests in flight on {killed_writer} and their next fail: {failed:?}"
        );
        assert!(sent > 20, "the site kept writing: {sent}");
        let (_, status, _) = status_json();
        assert_ne!(writer(&status), killed_writer, "the writes moved");
        up_and_converged();
        let (code, status, err) = status_json();
        assert_eq!(code, Some(0), "{killed_writer} rejoined: {err}{status}");
    }

    // A member with nothing (a new disk) is copied whole from a live one
    // (SST by mariadb-backup), over TLS, each verifying the other.
    let refilled = jiff::Timestamp::now().as_second();
    foobar()
        .args(["-i", HA, "lab", "reset", "db3"])
        .assert()
        .success();
    up_and_converged();
    let transfer = on_server_ok(
        HA,
        "db3",
        "journalctl -u mariadb --no-pager | grep WSREP_SST",
    );
    assert!(
        transfer.contains("MODE='VERIFY_CA', encrypt='3'")
            && transfer.contains("Verifying peer certificate chain"),
        "{transfer}"
    );
    // The donor served clients all through the copy (Donor/Desynced
    // passes clustercheck): a donor marked down would cut the writer's
    // clients whenever the writer is the one chosen.
    let chosen = on_server_ok(
        HA,
        "db3",
        &format!("journalctl -u mariadb --no-pager --since @{refilled} | grep -o '([a-z0-9]*)(SYNCED) as donor' | tail -n 1"),
    );
    let donor = chosen
        .trim()
        .strip_prefix('(')
        .and_then(|c| c.split_once(')'))
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| panic!("no donor named in db3's journal: {chosen}"));
    assert!(MEMBERS.contains(&donor.as_str()), "{chosen}");
    for lb in ["lb1", "lb2"] {
        let downs = on_server_ok(
            HA,
            lb,
            &format!("journalctl --no-pager --since @{refilled} | grep -c 'Server mysql/{donor} is DOWN' || true"),
        );
        assert_eq!(
            downs.trim(),
            "0",
            "{lb} took the donor {donor} out during the copy"
        );
    }
    stream_goes_on_after_a_gap(refilled);

    // A power cut: every member killed at once, booted again.
    let before = visits();
    for member in MEMBERS {
        foobar()
            .args(["-i", HA, "lab", "kill", member])
            .assert()
            .success();
    }
    up_and_converged();
    assert!(visits() > before, "no acknowledged write lost");

    // Every member stopped cleanly, db2 last and ahead of the others:
    // only db2 may start the cluster again.
    on_server_ok(HA, "db1", "systemctl stop mariadb");
    on_server_ok(HA, "db3", "systemctl stop mariadb");
    let written = visits_after_members_stopped();
    on_server_ok(HA, "db2", "systemctl stop mariadb");
    let (code, out) = provision(HA).text();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "[db2] changed: galera member (bootstrap the cluster here (the most advanced member"
        ),
        "{out}"
    );
    for other in ["db1", "db3"] {
        assert!(
            out.contains(&format!(
                "[{other}] changed: galera member (join the cluster)"
            )),
            "{out}"
        );
    }
    assert!(visits() > written, "the write db2 alone took is kept");

    // Two members lost at once: the one left is a minority and refuses
    // writes (the site's dynamic pages fail rather than fork the data).
    foobar()
        .args(["-i", HA, "lab", "kill", "db1"])
        .assert()
        .success();
    foobar()
        .args(["-i", HA, "lab", "kill", "db2"])
        .assert()
        .success();
    let lost = Instant::now();
    loop {
        let state = on_server_ok(
            HA,
            "db3",
            "mysql -N -B -e \"SHOW STATUS LIKE 'wsrep_cluster_status'\" | cut -f2",
        );
        if state.trim() == "non-Primary" {
            break;
        }
        assert!(lost.elapsed() < Duration::from_secs(30), "db3 is {state}");
        thread::sleep(Duration::from_millis(200));
    }
    let write = on_server(
        HA,
        "db3",
        "mysql -e 'UPDATE foobar.visits SET count = count + 1'",
    );
    assert!(!write.status.success(), "a minority took a write");
    up_and_converged();
    let (code, status, err) = status_json();
    assert_eq!(code, Some(0), "{err}{status}");
}

#[test]
fn a_web_server_that_fails_its_restart_stays_out_and_stops_the_roll() {
    let _turn = lab_turn();
    ha_lab_ready();
    // web2's nginx config breaks: `nginx -t` refuses the reload.
    on_server_ok(
        HA,
        "web2",
        "echo 'broken;' >> /etc/nginx/sites-enabled/foobar.conf",
    );
    let load = Load::start(2);
    let (code, json, err) = restart(&["web"]);
    let (sent, failed) = load.finish();
    assert_eq!(code, Some(1), "{err}{json}");
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}",
        failed.len()
    );
    let line = |host: &str| {
        json["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["host"] == host && s["method"] == "drain")
            .cloned()
            .unwrap_or_else(|| panic!("{host}: {json}"))
    };
    assert_eq!(line("web1")["ok"], true, "{json}");
    assert_eq!(line("web2")["ok"], false, "{json}");
    assert!(
        line("web2")["detail"]
            .as_str()
            .unwrap()
            .contains("left out of the pool"),
        "{json}"
    );
    assert!(
        line("web3")["detail"]
            .as_str()
            .unwrap()
            .contains("the roll stopped at web2"),
        "{json}"
    );
    assert_eq!(state_at("lb1", "web2"), "DRAIN");
    // Provision mends the config; the next roll puts web2 back.
    let (code, json, err) = provision(HA).args(&["--limit", "web2"]).json();
    assert_eq!(code, Some(0), "{err}{json}");
    let (code, json, err) = restart(&["web"]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(state_at("lb1", "web2"), "UP");
}

#[test]
fn a_killed_web_server_leaves_the_pool_and_comes_back() {
    let _turn = lab_turn();
    ha_lab_ready();
    let load = Load::start(4);
    thread::sleep(Duration::from_millis(500));
    foobar()
        .args(["-i", HA, "lab", "kill", "web3"])
        .assert()
        .success();
    let down = wait_for_state("lb1", "web3", "DOWN", Duration::from_secs(10));
    thread::sleep(Duration::from_secs(1));
    foobar().args(["-i", HA, "lab", "up"]).assert().success();
    let up = wait_for_state("lb1", "web3", "UP", Duration::from_secs(60));
    thread::sleep(Duration::from_millis(500));
    let (sent, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}",
        failed.len()
    );
    eprintln!("web3 marked down {down:?} after the kill, up {up:?} after lab up; {sent} requests, 0 failed");
}

#[test]
fn the_floating_address_moves_when_its_load_balancer_dies() {
    let _turn = lab_turn();
    ha_lab_ready();
    let holds = |lb: &str| {
        let addresses = on_server(HA, lb, "ip -o addr show dev eth0");
        addresses.status.success() && text(&addresses.stdout).contains(&format!("{FLOATING}/24"))
    };
    // Both addresses at once: one VRRP instance moves them together.
    let holds_v6 = |lb: &str| {
        on_server_ok(HA, lb, "ip -6 -o addr show dev eth0").contains(&format!("{FLOATING_V6}/64"))
    };
    let (holder, other) = if holds("lb1") {
        ("lb1", "lb2")
    } else {
        ("lb2", "lb1")
    };
    assert!(holds(holder), "one load balancer holds {FLOATING}");
    assert!(
        holds_v6(holder) && !holds_v6(other),
        "{holder} holds {FLOATING_V6}"
    );
    foobar()
        .args(["-i", HA, "lab", "kill", holder])
        .assert()
        .success();
    let killed = Instant::now();
    while !holds(other) {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "{other} never took {FLOATING} over"
        );
        thread::sleep(Duration::from_millis(200));
    }
    let moved = killed.elapsed();
    while get("/healthz").map(|(s, _)| s) != Ok(200)
        || get_at(FLOATING_V6, "/healthz").map(|(s, _)| s) != Ok(200)
    {
        assert!(
            killed.elapsed() < Duration::from_secs(25),
            "the site does not answer at {FLOATING} and {FLOATING_V6} through {other}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "{other} took {FLOATING} over {moved:?} after {holder} died; the site answered after {:?}",
        killed.elapsed()
    );
    // Back up, the old holder waits as the standby: no move, no reset.
    foobar().args(["-i", HA, "lab", "up"]).assert().success();
    let (code, json, err) = provision(HA).args(&["--limit", holder]).json();
    assert_eq!(code, Some(0), "{err}{json}");
    assert!(holds(other) && !holds(holder));
    assert!(holds_v6(other) && !holds_v6(holder));
}

#[test]
fn limit_works_on_every_command_that_contacts_servers() {
    let _turn = lab_turn();
    ha_lab_ready();
    for cmd in [
        &["restart", "app", "--force"][..],
        &["maintenance", "status"],
        &["provision"],
        &["dns-check"],
    ] {
        let out = foobar()
            .args(["-i", HA, "--limit", "web9"])
            .args(cmd)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("--limit web9"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = foobar()
        .args([
            "-i",
            HA,
            "--limit",
            "web2",
            "maintenance",
            "status",
            "--json",
        ])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let servers: Vec<_> = json["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["server"].clone())
        .collect();
    assert_eq!(servers, ["web2"], "{json}");
    let (code, json, err) = restart(&["app", "--limit", "web3"]);
    assert_eq!(code, Some(0), "{err}{json}");
    let hosts: std::collections::BTreeSet<_> = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["host"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hosts.into_iter().collect::<Vec<_>>(), ["web3"], "{json}");
}

/// `deploy` over three app servers under load: the release command runs
/// once, on the first app server; every server serves the new release;
/// a graceful reload drops no request; a rollback neither.
#[test]
fn a_deploy_and_a_rollback_drop_no_request() {
    let _turn = lab_turn();
    ha_lab_ready();
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_tree(&root.join("apps/python"), &dir.path().join("app"));
    let inventory = std::fs::read_to_string(root.join(HA)).unwrap().replace(
        "  source: ../apps/python\n",
        &format!(
            "  source: {}\n  release_command: logger -t foobar-release-command ran\n",
            dir.path().join("app").display()
        ),
    );
    let inv = dir.path().join("inventory.yml");
    std::fs::write(&inv, inventory).unwrap();
    let marks = |web: &str| -> usize {
        on_server_ok(
            HA,
            web,
            "journalctl -t foobar-release-command -o cat | wc -l",
        )
        .trim()
        .parse()
        .unwrap()
    };
    let before: Vec<usize> = WEBS.iter().map(|w| marks(w)).collect();
    append(&dir.path().join("app"), "app.py", "\n# a code change\n");

    let load = Load::start(4);
    thread::sleep(Duration::from_millis(500));
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "deploy", "--json"])
        .output()
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    let (sent, failed) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(sent > 50, "only {sent} requests");
    assert!(
        failed.is_empty(),
        "deploy: {} of {sent} failed: {failed:?}",
        failed.len()
    );
    let after: Vec<usize> = WEBS.iter().map(|w| marks(w)).collect();
    assert_eq!(
        (
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        ),
        (1, 0, 0),
        "the release command ran once, on web1"
    );
    let live: Vec<String> = WEBS
        .iter()
        .map(|w| on_server_ok(HA, w, "readlink /srv/foobar/current"))
        .collect();
    assert!(live.iter().all(|l| *l == live[0]), "{live:?}");

    let load = Load::start(4);
    thread::sleep(Duration::from_millis(500));
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "rollback"])
        .output()
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    let (sent, failed) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        failed.is_empty(),
        "rollback: {} of {sent} failed: {failed:?}",
        failed.len()
    );
    for w in WEBS {
        assert_ne!(on_server_ok(HA, w, "readlink /srv/foobar/current"), live[0]);
    }
}

/// With the firewall: the cluster's members answer MariaDB to the load
/// balancers (HAProxy) only, and their own ports to each other only; the
/// load balancers serve 3306 to the app servers only. VRRP still moves
/// the floating address (tested above), HAProxy still checks the web
/// servers.
#[test]
fn each_server_opens_only_what_its_roles_serve() {
    let _turn = lab_turn();
    ha_lab_ready();
    let reach = |from: &str, to: &str| {
        on_server(
            HA,
            from,
            &format!("timeout 3 bash -c '</dev/tcp/{to}' && echo reached"),
        )
        .status
        .success()
    };
    assert!(reach("lb1", "10.249.0.31/3306"), "HAProxy reaches a member");
    assert!(
        !reach("web1", "10.249.0.31/3306"),
        "an app server only through HAProxy"
    );
    assert!(
        reach("web1", &format!("{FLOATING}/3306")),
        "an app server reaches HAProxy"
    );
    assert!(
        reach("db2", "10.249.0.31/4567"),
        "a member reaches another's group port"
    );
    assert!(!reach("web1", "10.249.0.31/4567"), "no one else does");
    let from_here = |to: &str| {
        std::process::Command::new("timeout")
            .args(["3", "bash", "-c", &format!("</dev/tcp/{to}")])
            .status()
            .unwrap()
            .success()
    };
    assert!(
        !from_here("10.249.0.31/3306"),
        "this machine does not reach a member"
    );
    assert!(
        !from_here(&format!("{FLOATING}/3306")),
        "nor HAProxy's 3306"
    );

    // From this machine, every server shows exactly what its roles serve:
    // every TCP port scanned, and a set of UDP ones.
    for (server, tcp, udp) in [
        ("10.249.0.11", vec!["22", "53", "80"], vec!["53"]),
        ("10.249.0.12", vec!["22", "53", "80"], vec!["53"]),
        ("10.249.0.21", vec!["22", "80"], vec![]),
        ("10.249.0.22", vec!["22", "80"], vec![]),
        ("10.249.0.23", vec!["22", "80"], vec![]),
        ("10.249.0.31", vec!["22"], vec![]),
        ("10.249.0.32", vec!["22"], vec![]),
        ("10.249.0.33", vec!["22"], vec![]),
        ("10.249.0.40", vec!["22"], vec![]),
    ] {
        assert_eq!(open_ports(server, &["-sT", "-p-"]), tcp, "{server}");
        assert_eq!(
            open_ports(server, &["-sU", "-p", "53,67,123,161,500,3306,5353,11211"]),
            udp,
            "{server}"
        );
    }
}

/// HTTPS on the HA design: the CA's challenges reach whichever web server
/// HAProxy picks, one certificate serves them all, HTTPS passes through
/// the load balancers verified by name, and a rolling restart of the web
/// servers under HTTPS load on keep-alive connections drops nothing. Then
/// back to plain HTTP.
#[test]
fn https_passes_through_the_load_balancers() {
    let _turn = lab_turn();
    ha_lab_ready();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.yml");
    let yaml = std::fs::read_to_string(root.join(HA))
        .unwrap()
        .replace("../apps/python", root.join("apps/python").to_str().unwrap())
        .replace(
            "\ndomain:\n",
            "\nnginx:\n  tls:\n    acme:\n      directory: https://10.249.0.1:14000/dir\n      \
             ca: /var/lib/foobar/lab-ha/acme/roots.pem\n\ndomain:\n",
        );
    std::fs::write(&inventory, yaml).unwrap();
    let https = inventory.to_str().unwrap();
    let (code, json, err) = provision(https).json();
    assert_eq!(code, Some(0), "{err}{json}");

    let serials: std::collections::BTreeSet<String> = WEBS
        .iter()
        .map(|w| {
            on_server_ok(
                HA,
                w,
                "openssl x509 -noout -serial -issuer -in /etc/foobar/tls/www.foobar.com.crt",
            )
        })
        .collect();
    assert_eq!(
        serials.len(),
        1,
        "one certificate for the site: {serials:?}"
    );
    assert!(serials.iter().all(|s| s.contains("Pebble")), "{serials:?}");
    let curl = |url: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
            ])
            .args(["--cacert", "/var/lib/foobar/lab-ha/acme/roots.pem"])
            .args(["--resolve", &format!("www.foobar.com:443:{FLOATING}")])
            .args(["--resolve", &format!("www.foobar.com:80:{FLOATING}")])
            .arg(url)
            .output()
            .unwrap();
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    };
    assert_eq!(curl("https://www.foobar.com/healthz"), "200 ");
    assert_eq!(
        curl("http://www.foobar.com/visits"),
        "301 https://www.foobar.com/visits"
    );

    // Busy keep-alive connections, which a load balancer passing TLS
    // through cannot move: nginx ends each within 20 s, so every drain
    // finishes within the restart's 30 s.
    let mut outcome = None;
    let (requests, failed) =
        wrk_under_load(&format!("https://{FLOATING}/healthz"), 90, true, || {
            outcome = Some(restart_json(https, &["web", "--force"]));
        });
    let (code, json, err) = outcome.unwrap();
    assert_eq!(code, Some(0), "{err}{json}");
    assert!(requests > 50, "only {requests} requests");
    assert_eq!(failed, 0, "{failed} of {requests} failed");

    let (code, json, err) = provision(HA).json();
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(get("/healthz").map(|(status, _)| status), Ok(200));
}

/// The response code of a zone transfer (AXFR) of foobar.com asked of
/// `server` over TCP without a key, as anyone on the network could ask.
fn unsigned_transfer(server: &str) -> hickory_proto::op::ResponseCode {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::io::{Read, Write};
    let mut query = Message::query();
    query.add_query(Query::query(
        Name::from_ascii("foobar.com.").unwrap(),
        RecordType::AXFR,
    ));
    let bytes = query.to_vec().unwrap();
    let mut tcp = std::net::TcpStream::connect((server, 53)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(&(bytes.len() as u16).to_be_bytes()).unwrap();
    tcp.write_all(&bytes).unwrap();
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    tcp.read_exact(&mut reply).unwrap();
    Message::from_vec(&reply).unwrap().metadata.response_code
}

/// `dns-check --json` of `inventory`: (exit code, each nameserver's
/// verdicts, the serials).
fn nameservers_say(inventory: &std::path::Path, args: &[&str]) -> (Option<i32>, Value) {
    let (code, json, err) = run_json(inventory, "dns-check", args);
    assert!(json.is_object(), "{err}");
    (code, json)
}

fn verdicts_of(json: &Value, server: &str) -> Vec<String> {
    json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["server"].as_str().unwrap().starts_with(server))
        .map(|r| r["verdict"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_nameservers_serve_the_zone_and_either_answers_alone() {
    let _turn = lab_turn();
    ha_lab_ready();
    let ha = std::path::Path::new(HA);
    // Both answer www and the zone's names, with one serial.
    let (code, json) = nameservers_say(ha, &[]);
    assert_eq!(code, Some(0), "{json}");
    let serials = |json: &Value| -> Vec<Value> {
        json["serials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[1].clone())
            .collect()
    };
    let before = serials(&json);
    assert_eq!(before.len(), 2, "{json}");
    assert_eq!(before[0], before[1], "{json}");
    assert!(
        verdicts_of(&json, "ns2").iter().all(|v| v == "match"),
        "{json}"
    );

    // The zone goes only to a holder of the site's key, not even to the
    // secondary's address unsigned.
    use hickory_proto::op::ResponseCode;
    assert_eq!(unsigned_transfer("10.249.0.11"), ResponseCode::Refused);
    assert_eq!(unsigned_transfer("10.249.0.12"), ResponseCode::Refused);
    let transfer = on_server_ok(
        HA,
        "lb2",
        "journalctl -u named --no-pager | grep -c 'Transfer status: success' || true",
    );
    assert!(transfer.trim().parse::<u32>().unwrap() >= 1, "{transfer}");

    // A change of the zone reaches the secondary by NOTIFY, in seconds.
    let dir = tempfile::tempdir().unwrap();
    let changed = inventory_with(HA, dir.path(), &[("  ttl: 300", "  ttl: 240")]);
    let (code, out) = provision(&changed).text();
    assert_eq!(code, Some(0), "{out}");
    let (code, json) = nameservers_say(&changed, &["--wait", "10"]);
    assert_eq!(code, Some(0), "{json}");
    let after = serials(&json);
    assert_eq!(after[0], after[1], "{json}");
    assert_ne!(after, before, "{json}");

    // The primary's server dies: the secondary alone still answers.
    foobar()
        .args(["-i", HA, "lab", "kill", "lb1"])
        .assert()
        .success();
    let (code, json) = nameservers_say(&changed, &[]);
    assert_eq!(code, Some(3), "one nameserver is unreachable: {json}");
    assert!(
        verdicts_of(&json, "ns2").iter().all(|v| v == "match"),
        "{json}"
    );
    assert!(
        verdicts_of(&json, "ns1").iter().all(|v| v == "unreachable"),
        "{json}"
    );
    foobar().args(["-i", HA, "lab", "up"]).assert().success();
    let (code, out) = provision(HA).text();
    assert_eq!(code, Some(0), "{out}");
}

/// The cluster back to a moment: every member stopped, the one the backups
/// come from (db3) starts a new cluster on the restored copy with the
/// streamed binary log replayed up to the moment, and the others, their
/// data moved aside, are filled from it by state transfers. Every member
/// then holds the same rows, the site answers through the floating
/// address, and a drill on a member leaves the cluster untouched.
#[test]
fn the_cluster_is_restored_to_a_moment_on_every_member() {
    let _turn = lab_turn();
    ha_lab_ready();
    let write = |sql: &str| on_server_ok(HA, "db1", &format!("mysql foobar -e \"{sql}\""));
    write("DROP TABLE IF EXISTS kept; CREATE TABLE kept (v VARCHAR(64) PRIMARY KEY); INSERT INTO kept VALUES ('in-backup')");
    let (code, doc) = valid_json(&["-i", HA, "backup"], "backup");
    assert_eq!(code, Some(0), "{doc:#}");
    assert!(
        doc["taken"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "db" && t["server"] == "db3"),
        "the database from db3, not the writer: {doc:#}"
    );
    write("INSERT INTO kept VALUES ('before-T')");
    thread::sleep(Duration::from_millis(1500));
    let at = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    thread::sleep(Duration::from_millis(1500));
    write("INSERT INTO kept VALUES ('after-T'); DROP TABLE kept");

    let (code, doc) = valid_json(&["-i", HA, "restore", "--yes", "--at", &at], "restore");
    assert_eq!(code, Some(0), "{doc:#}");
    assert!(doc["failure"].is_null(), "{doc:#}");
    assert!(
        doc["replayed"]["transactions"].as_u64().unwrap() >= 1,
        "{doc:#}"
    );
    let restored: Vec<&str> = doc["restored"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "db")
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(restored, ["db3", "db1", "db2"], "{doc:#}");
    // Every member's rows first, so that a failure says which held what
    // (and the restore's report: what was replayed, up to which GTID).
    let rows: Vec<(&str, String)> = MEMBERS
        .iter()
        .map(|member| {
            let rows = on_server_ok(
                HA,
                member,
                "mysql -N -B foobar -e 'SELECT v FROM kept ORDER BY v'",
            );
            (
                *member,
                rows.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    for (member, held) in &rows {
        assert_eq!(
            held, "before-T in-backup",
            "{member}, at {at}: {rows:?}\n{doc:#}"
        );
        // What each member held is kept aside.
        on_server_ok(HA, member, "test -d /var/lib/mysql.before-restore-*/foobar");
    }
    let (code, status, err) = status_json();
    assert_eq!(code, Some(0), "{err}{status}");
    for member in MEMBERS {
        let cluster = &server_in(&status, member)["cluster"];
        assert_eq!(cluster["state"], "Synced", "{member}: {status}");
        assert_eq!(cluster["size"], 3, "{member}: {status}");
    }
    visits();

    // A drill on a member: the backup up beside it, checked; the cluster
    // goes on as it was.
    let (code, doc) = valid_json(&["-i", HA, "restore", "--drill"], "restore");
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["drill"]["tables_check"], true, "{doc:#}");
    assert_eq!(
        on_server_ok(HA, "db3", "pgrep -c mariadbd").trim(),
        "1",
        "a throwaway server was left running"
    );
    let (code, status, err) = status_json();
    assert_eq!(code, Some(0), "{err}{status}");
    write("DROP TABLE kept");
    for member in MEMBERS {
        on_server_ok(HA, member, "rm -rf /var/lib/mysql.before-restore-*");
    }
    on_server_ok(HA, "web1", "rm -rf /srv/foobar/shared.before-restore-*");
}
