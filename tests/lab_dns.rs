//! `foobar dns-check` against real BIND on lab servers.

mod common;

use std::time::{Duration, Instant};

use common::lab::*;
use common::*;
use serde_json::Value;

fn dns_check(inventory: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let out = foobar()
        .args(["-i", inventory, "dns-check", "--json"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        text(&out.stderr),
    )
}

fn serial(json: &Value) -> u64 {
    json["serials"][0][1].as_u64().unwrap()
}

#[test]
fn provisioned_record_matches_and_hand_changes_are_caught() {
    let _turn = lab_turn();
    converged(LAB);
    let (code, json, err) = dns_check(LAB, &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(
        json["rows"].as_array().unwrap().len(),
        4,
        "apex and www, A and AAAA"
    );
    assert_eq!(json["expected_v6"], LAB_ADDRESS_V6);
    for row in json["rows"].as_array().unwrap() {
        let want = match row["type"].as_str() {
            Some("AAAA") => LAB_ADDRESS_V6,
            _ => LAB_ADDRESS,
        };
        assert_eq!(row["reply"]["data"][0], want, "{row}");
        assert_eq!(row["reply"]["authoritative"], true);
        assert_eq!(row["reply"]["ttl"], 300);
    }
    let before = serial(&json);

    // www changed by hand to another address and reloaded: caught.
    on_server_ok(
        LAB,
        LAB_SERVER,
        "sed -i 's/^www IN A .*/www IN A 10.250.0.99/' /var/lib/bind/db.foobar.com && rndc reload foobar.com",
    );
    let (code, json, _) = dns_check(LAB, &[]);
    assert_eq!(code, Some(1), "{json}");
    let www = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "www.foobar.com")
        .unwrap()
        .clone();
    assert_eq!(
        www["why"], "expected 10.250.0.10, found 10.250.0.99",
        "{www}"
    );

    // --wait polls until provision (run meanwhile) puts it right.
    let waiter = std::thread::spawn(|| dns_check(LAB, &["--wait", "30"]));
    std::thread::sleep(Duration::from_secs(2));
    converged(LAB);
    let (code, json, err) = waiter.join().unwrap();
    assert_eq!(code, Some(0), "{err}{json}");
    assert!(json["attempts"].as_u64().unwrap() > 1, "{json}");
    assert!(
        serial(&json) > before,
        "the restored zone has a higher serial"
    );
    assert!(err.contains("answers disagree"), "progress is shown: {err}");

    // The zone removed from BIND: the server no longer answers for it.
    on_server_ok(LAB, LAB_SERVER, "cp /etc/bind/named.conf.local /root/ncl && : > /etc/bind/named.conf.local && rndc reconfig");
    let (code, json, _) = dns_check(LAB, &[]);
    assert_eq!(code, Some(1), "{json}");
    on_server_ok(
        LAB,
        LAB_SERVER,
        "cp /root/ncl /etc/bind/named.conf.local && rndc reconfig",
    );

    // BIND stopped: exit 3, within the query timeout.
    on_server_ok(LAB, LAB_SERVER, "systemctl stop named");
    let start = Instant::now();
    let (code, json, _) = dns_check(LAB, &["--timeout-ms", "1500"]);
    assert_eq!(code, Some(3), "{json}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    on_server_ok(LAB, LAB_SERVER, "systemctl start named");
    let (code, _, _) = dns_check(LAB, &["--wait", "10"]);
    assert_eq!(code, Some(0));
}

/// The pair lab: pair2 is the zone's secondary and the database's replica
/// (the primary/replica design). Both copies are proven; then a secondary
/// cut off from the primary is flagged.
#[test]
fn the_pair_labs_secondary_copies_zone_and_database() {
    let _turn = lab_turn();
    const PAIR: &str = "tests/fixtures/lab-pair.yml";
    lab_up(PAIR);
    let (code, json, err) = provision(PAIR).json();
    assert_eq!(code, Some(0), "{err}{json}");
    let replication = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["host"] == "pair2")
        .expect("the replica's check")
        .clone();
    assert_eq!(replication["replication"]["io_running"], "Yes", "{json}");
    assert_eq!(replication["replication"]["sql_running"], "Yes", "{json}");

    // Replication goes over TLS, the primary's certificate verified
    // against the database CA foobar keeps.
    let tls = on_server_ok(PAIR, "pair2", "mysql -e 'SHOW SLAVE STATUS\\G'");
    assert!(
        tls.contains("Master_SSL_Allowed: Yes")
            && tls.contains("Master_SSL_Verify_Server_Cert: Yes"),
        "{tls}"
    );

    // A row written on the primary reaches the read-only replica within
    // a second.
    on_server_ok(
        PAIR,
        "pair1",
        "mysql -e 'CREATE TABLE IF NOT EXISTS foobar.copied (id INT PRIMARY KEY); REPLACE INTO foobar.copied VALUES (7)'",
    );
    let written = Instant::now();
    while on_server(
        PAIR,
        "pair2",
        "mysql -N -B -e 'SELECT id FROM foobar.copied'",
    )
    .stdout
    .trim_ascii()
        != b"7"
    {
        assert!(
            written.elapsed() < Duration::from_secs(1),
            "the row did not reach the replica"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let read_only = on_server_ok(PAIR, "pair2", "mysql -N -B -e 'SELECT @@read_only'");
    assert_eq!(read_only.trim(), "1");

    // The binary log, which every replica copies, holds the users made
    // while it was on (the replication user), by hash, never a password.
    let binlog = on_server_ok(
        PAIR,
        "pair1",
        "cd /var/lib/mysql && mariadb-binlog mariadb-bin.[0-9]*",
    );
    assert!(binlog.contains("IDENTIFIED BY PASSWORD '*"), "{binlog}");
    for secret in ["mysql_password", "replication_password"] {
        let password =
            std::fs::read_to_string(format!("/var/lib/foobar/test-lab/secrets/{secret}")).unwrap();
        assert!(
            !binlog.contains(password.trim()),
            "{secret} in the binary log"
        );
    }

    // Every record of domain.records, at both nameservers: the
    // secondary's copy holds them too.
    let (code, json, err) = dns_check(PAIR, &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        2 * (2 + 7),
        "the apex, www and the 7 names and types of domain.records, at two nameservers"
    );
    let dkim = dkim_key_of(PAIR);
    for ns in ["ns1.foobar.test", "ns2.foobar.test"] {
        let data = |name: &str, record_type: &str| -> Vec<String> {
            let row = rows
                .iter()
                .find(|r| r["server"] == ns && r["name"] == name && r["type"] == record_type)
                .unwrap_or_else(|| panic!("{ns}: no row for {name} {record_type}: {json}"));
            assert_eq!(row["verdict"], "match", "{row}");
            serde_json::from_value(row["reply"]["data"].clone()).unwrap()
        };
        assert_eq!(data("foobar.test", "MX"), ["10 mail.example.net."]);
        assert_eq!(
            data("foobar.test", "TXT"),
            ["\"v=spf1 include:_spf.example.net -all\""]
        );
        assert_eq!(
            data("_dmarc.foobar.test", "TXT"),
            ["\"v=DMARC1; p=reject\""]
        );
        assert_eq!(
            data("s1._domainkey.foobar.test", "TXT"),
            [format!("\"{dkim}\"")],
            "the key's strings joined"
        );
        assert_eq!(data("blog.foobar.test", "CNAME"), ["www.foobar.test."]);
        assert_eq!(data("foobar.test", "CAA"), ["0 issue \"letsencrypt.org\""]);
        assert_eq!(
            data("_imaps._tcp.foobar.test", "SRV"),
            ["0 1 993 mail.example.net."]
        );
    }
    // On the wire the DKIM key is one record of two strings (255 bytes,
    // then the rest), as DNS requires, at both nameservers.
    for server in ["10.251.0.10", "10.251.0.11"] {
        let records = txt_strings(server, "s1._domainkey.foobar.test.");
        assert_eq!(records.len(), 1, "{server}: {records:?}");
        let strings = &records[0];
        assert_eq!(strings.len(), 2, "{server}: {strings:?}");
        assert_eq!(strings[0].len(), 255, "{server}");
        assert_eq!(strings.concat(), dkim, "{server}");
    }
    // A resolver (here: ns2 asked with recursion desired) lists the same NS set.
    let (code, json, _) = dns_check(PAIR, &["--resolver", "10.251.0.11"]);
    assert_eq!(code, Some(0), "{json}");

    // The secondary copied the zone from the primary: both give one serial.
    let serials = json["serials"].as_array().unwrap();
    assert_eq!(serials.len(), 2, "{json}");
    assert_eq!(serials[0][1], serials[1][1], "{json}");

    // Cut the secondary off from the primary, then change the primary's zone by
    // hand: its NOTIFY finds a secondary that cannot fetch, and the serials part.
    on_server_ok(PAIR, "pair2", "ip route add prohibit 10.251.0.10/32");
    on_server_ok(
        PAIR,
        "pair1",
        "sed -i 's/^\\( *\\)[0-9]* ; serial/\\14000000000 ; serial/' /var/lib/bind/db.foobar.test && rndc reload foobar.test",
    );
    let (code, json, _) = dns_check(PAIR, &[]);
    assert_eq!(code, Some(1), "{json}");
    let problem = json["serial_problem"].as_str().unwrap();
    assert!(problem.contains("ns1.foobar.test: 4000000000"), "{problem}");
    foobar()
        .args(["-i", PAIR, "lab", "down"])
        .assert()
        .success();
}

/// The DKIM key `inventory` gives `s1._domainkey` (a TXT value without
/// escapes).
fn dkim_key_of(inventory: &str) -> String {
    let text = std::fs::read_to_string(inventory).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("name: s1._domainkey"))
        .expect("a DKIM key in the inventory");
    let (_, value) = line.split_once("value: \"").unwrap();
    value
        .trim_end()
        .trim_end_matches(" }")
        .trim_end_matches('"')
        .to_string()
}

/// The character-strings of each TXT record of `name` at `server` (a raw
/// query with room for long answers, EDNS), as the server sends them.
fn txt_strings(server: &str, name: &str) -> Vec<Vec<String>> {
    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let mut query = Message::query();
    query.add_query(Query::query(
        Name::from_ascii(name).unwrap(),
        RecordType::TXT,
    ));
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    query.set_edns(edns);
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    socket
        .send_to(&query.to_vec().unwrap(), (server, 53))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).unwrap();
    let reply = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(reply.metadata.id, query.metadata.id);
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}
