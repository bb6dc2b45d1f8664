//! DNS for `foobar dns-check`: one query to one server (hickory-proto
//! messages over UDP), and the pure rules that judge the answers: the
//! records of one name and type, as text, against the inventory's.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;
use tokio::net::UdpSocket;

use crate::inventory::{RecordData, RecordKind, ZoneRecord};

/// The largest answer asked for (EDNS): a long DKIM key's TXT record
/// does not fit DNS's plain 512 bytes.
const MAX_ANSWER: u16 = 4096;

/// What one server answered to one question.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reply {
    #[serde(serialize_with = "rcode_text")]
    pub rcode: ResponseCode,
    pub authoritative: bool,
    /// The server cut the answer short (TC): it did not fit.
    pub truncated: bool,
    /// The records of the type asked, as dns-check shows them
    /// (`RecordData::presentation`: a TXT record's strings joined).
    pub data: BTreeSet<String>,
    /// Lowest TTL of those records.
    pub ttl: Option<u32>,
    pub soa_serial: Option<u32>,
    pub ns_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("no answer from {0} within {1} ms")]
    Timeout(SocketAddr, u128),
    #[error("cannot query {0}: {1}")]
    Network(SocketAddr, String),
    #[error("{0} sent a malformed answer: {1}")]
    Malformed(SocketAddr, String),
}

pub async fn query(
    server: SocketAddr,
    name: &str,
    record_type: RecordType,
    recursion: bool,
    timeout: Duration,
) -> Result<Reply, QueryError> {
    let net = |e: std::io::Error| QueryError::Network(server, e.to_string());
    let fqdn = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
        .map_err(|e| QueryError::Network(server, format!("bad name {name}: {e}")))?;
    let mut msg = Message::query();
    msg.add_query(Query::query(fqdn, record_type));
    msg.metadata.recursion_desired = recursion;
    let mut edns = Edns::new();
    edns.set_max_payload(MAX_ANSWER);
    msg.set_edns(edns);
    let bytes = msg
        .to_vec()
        .map_err(|e| QueryError::Malformed(server, e.to_string()))?;
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(net)?;
    socket.connect(server).await.map_err(net)?;
    socket.send(&bytes).await.map_err(net)?;
    let exchange = async {
        let mut buf = vec![0u8; usize::from(MAX_ANSWER)];
        loop {
            let n = socket.recv(&mut buf).await.map_err(net)?;
            let reply = Message::from_vec(&buf[..n])
                .map_err(|e| QueryError::Malformed(server, e.to_string()))?;
            // Ignore stray datagrams that are not the answer to this
            // query: another id, not a response, or another question.
            if answers(&msg, &reply) {
                return Ok(reply);
            }
        }
    };
    let reply = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| QueryError::Timeout(server, timeout.as_millis()))??;
    Ok(summarise(&reply, record_type))
}

/// `reply` is the answer to `query`: the same id, a response (QR set),
/// and the same question (`Name`s compare without case, as DNS does).
fn answers(query: &Message, reply: &Message) -> bool {
    reply.metadata.id == query.metadata.id
        && reply.metadata.message_type == MessageType::Response
        && reply.queries.len() == query.queries.len()
        && reply.queries.iter().zip(&query.queries).all(|(r, q)| {
            r.query_type() == q.query_type()
                && r.query_class() == q.query_class()
                && r.name() == q.name()
        })
}

/// What `m`, the answer to a question of `asked` type, says.
fn summarise(m: &Message, asked: RecordType) -> Reply {
    let mut r = Reply {
        rcode: m.metadata.response_code,
        authoritative: m.metadata.authoritative,
        truncated: m.metadata.truncation,
        ..Reply::default()
    };
    for rec in &m.answers {
        match &rec.data {
            RData::SOA(soa) => r.soa_serial = Some(soa.serial),
            RData::NS(ns) => r
                .ns_names
                .push(ns.0.to_ascii().trim_end_matches('.').to_string()),
            // Only the type asked: a CNAME's target may come along.
            data if data.record_type() == asked => {
                if let Some(data) = record_data(data) {
                    r.data.insert(data.presentation());
                    r.ttl = Some(r.ttl.map_or(rec.ttl, |t| t.min(rec.ttl)));
                }
            }
            _ => {}
        }
    }
    r
}

/// A record's data as the inventory's records hold it, for the types
/// `domain.records` takes; names lowercase, as the inventory's are.
fn record_data(data: &RData) -> Option<RecordData> {
    let name = |n: &Name| n.to_ascii().to_ascii_lowercase();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Some(match data {
        RData::A(a) => RecordData::Address(IpAddr::V4(a.0)),
        RData::AAAA(a) => RecordData::Address(IpAddr::V6(a.0)),
        RData::CNAME(c) => RecordData::Alias(name(&c.0)),
        RData::MX(mx) => RecordData::Mail {
            preference: mx.preference,
            exchange: name(&mx.exchange),
        },
        // The strings of one record, joined: how SPF, DKIM and DMARC
        // readers take them.
        RData::TXT(txt) => RecordData::Text(text(&txt.txt_data.concat())),
        RData::CAA(caa) => RecordData::Caa {
            flags: caa.flags(),
            tag: caa.tag.to_ascii_lowercase(),
            value: text(&caa.value),
        },
        RData::SRV(srv) => RecordData::Service {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: name(&srv.target),
        },
        _ => return None,
    })
}

/// The response code as DNS tools name it (`No Error`, `Non-Existent Domain`).
fn rcode_text<S: serde::Serializer>(code: &ResponseCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&code.to_string())
}

/// Who was asked: an authoritative nameserver must answer with the AA
/// flag; a recursive resolver need not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    Authoritative,
    Resolver,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "why", rename_all = "snake_case")]
pub enum Verdict {
    Match,
    Mismatch(String),
    Unreachable(String),
}

/// What the records of one name and type should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub record_type: RecordType,
    /// As `Reply::data` holds them.
    pub data: BTreeSet<String>,
}

impl Expected {
    /// `ip` alone, in an A or AAAA record.
    pub fn address(ip: IpAddr) -> Self {
        Self {
            record_type: if ip.is_ipv4() {
                RecordType::A
            } else {
                RecordType::AAAA
            },
            data: BTreeSet::from([ip.to_string()]),
        }
    }

    /// The zone's records grouped by name and type, each group with its
    /// full name, in the order of their first record.
    pub fn of_records(records: &[ZoneRecord], zone: &str) -> Vec<(String, Expected)> {
        let mut groups: Vec<(String, Expected)> = Vec::new();
        for r in records {
            let name = r.fqdn(zone);
            let record_type = match r.kind {
                RecordKind::A => RecordType::A,
                RecordKind::AAAA => RecordType::AAAA,
                RecordKind::CNAME => RecordType::CNAME,
                RecordKind::MX => RecordType::MX,
                RecordKind::TXT => RecordType::TXT,
                RecordKind::CAA => RecordType::CAA,
                RecordKind::SRV => RecordType::SRV,
            };
            let data = r.data.presentation();
            match groups
                .iter_mut()
                .find(|(n, e)| *n == name && e.record_type == record_type)
            {
                Some((_, e)) => {
                    e.data.insert(data);
                }
                None => groups.push((
                    name,
                    Expected {
                        record_type,
                        data: BTreeSet::from([data]),
                    },
                )),
            }
        }
        groups
    }
}

/// Judges one answer: exactly the records expected, from an
/// authoritative server when one was asked.
pub fn judge(kind: ServerKind, expected: &Expected, reply: &Result<Reply, QueryError>) -> Verdict {
    let r = match reply {
        Err(e) => return Verdict::Unreachable(e.to_string()),
        Ok(r) => r,
    };
    let want = list(&expected.data);
    if r.rcode != ResponseCode::NoError {
        return Verdict::Mismatch(format!("expected {want}, found {}", r.rcode));
    }
    if kind == ServerKind::Authoritative && !r.authoritative {
        return Verdict::Mismatch("the answer is not authoritative (AA flag unset)".into());
    }
    if r.truncated {
        return Verdict::Mismatch(format!(
            "the answer did not fit {MAX_ANSWER} bytes and was cut short (TC flag set)"
        ));
    }
    if r.data.is_empty() {
        return Verdict::Mismatch(format!(
            "expected {want}, found no {} record",
            expected.record_type
        ));
    }
    if !r.data.is_superset(&expected.data) {
        return Verdict::Mismatch(format!("expected {want}, found {}", list(&r.data)));
    }
    let extra: BTreeSet<String> = r.data.difference(&expected.data).cloned().collect();
    if !extra.is_empty() {
        return Verdict::Mismatch(format!("expected only {want}, found also {}", list(&extra)));
    }
    Verdict::Match
}

/// Asks one server for `name`'s records of `expected`'s type and judges
/// the answer: what dns-check, status and a DNS restart's check all do.
pub async fn ask(
    server: SocketAddr,
    kind: ServerKind,
    name: &str,
    expected: &Expected,
    timeout: Duration,
) -> (Verdict, Option<Reply>) {
    let recursion = kind == ServerKind::Resolver;
    let reply = query(server, name, expected.record_type, recursion, timeout).await;
    (judge(kind, expected, &reply), reply.ok())
}

/// How long status and a restart's check wait for a nameserver.
pub const NAMESERVER_TIMEOUT: Duration = Duration::from_secs(2);

/// When authoritative nameservers report different SOA serials, says so.
pub fn serials_disagree(serials: &[(String, Option<u32>)]) -> Option<String> {
    let distinct: BTreeSet<u32> = serials.iter().filter_map(|(_, s)| *s).collect();
    (distinct.len() > 1).then(|| {
        let parts: Vec<String> = serials
            .iter()
            .map(|(n, s)| format!("{n}: {}", s.map_or("none".to_string(), |s| s.to_string())))
            .collect();
        format!("SOA serials disagree ({})", parts.join(", "))
    })
}

fn list(data: &BTreeSet<String>) -> String {
    data.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// `IP` or `IP:PORT` (port 53 by default).
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("`{s}` is not an address: write IP or IP:PORT, like 10.250.0.10:53"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 250, 0, 10));

    fn reply(addrs: &[IpAddr], aa: bool) -> Result<Reply, QueryError> {
        Ok(Reply {
            rcode: ResponseCode::NoError,
            authoritative: aa,
            data: addrs.iter().map(|a| a.to_string()).collect(),
            ttl: Some(300),
            ..Reply::default()
        })
    }

    #[test]
    fn only_a_response_to_the_question_asked_is_an_answer() {
        let name = Name::from_ascii("www.foobar.com.").unwrap();
        let mut query = Message::query();
        query.add_query(Query::query(name.clone(), RecordType::A));
        let answer = |qr: MessageType, asked: &str, t: RecordType| {
            let mut m = Message::new(query.metadata.id, qr, query.metadata.op_code);
            m.add_query(Query::query(Name::from_ascii(asked).unwrap(), t));
            m
        };
        assert!(answers(
            &query,
            &answer(MessageType::Response, "WWW.foobar.com.", RecordType::A)
        ));
        assert!(
            !answers(
                &query,
                &answer(MessageType::Query, "www.foobar.com.", RecordType::A)
            ),
            "QR unset"
        );
        assert!(
            !answers(
                &query,
                &answer(MessageType::Response, "evil.example.", RecordType::A)
            ),
            "another name"
        );
        assert!(
            !answers(
                &query,
                &answer(MessageType::Response, "www.foobar.com.", RecordType::AAAA)
            ),
            "another type"
        );
        let mut other_id = answer(MessageType::Response, "www.foobar.com.", RecordType::A);
        other_id.metadata.id = query.metadata.id.wrapping_add(1);
        assert!(!answers(&query, &other_id), "another id");
    }

    #[test]
    fn judges_answers() {
        assert_eq!(
            judge(
                ServerKind::Authoritative,
                &Expected::address(WANT),
                &reply(&[WANT], true)
            ),
            Verdict::Match
        );
        let other = IpAddr::V4(Ipv4Addr::new(10, 250, 0, 99));
        assert_eq!(
            judge(
                ServerKind::Authoritative,
                &Expected::address(WANT),
                &reply(&[other], true)
            ),
            Verdict::Mismatch("expected 10.250.0.10, found 10.250.0.99".into())
        );
        assert!(matches!(
            judge(ServerKind::Authoritative, &Expected::address(WANT), &reply(&[WANT, other], true)),
            Verdict::Mismatch(m) if m.contains("found also 10.250.0.99")
        ));
        assert!(matches!(
            judge(ServerKind::Authoritative, &Expected::address(WANT), &reply(&[WANT], false)),
            Verdict::Mismatch(m) if m.contains("not authoritative")
        ));
        assert_eq!(
            judge(
                ServerKind::Resolver,
                &Expected::address(WANT),
                &reply(&[WANT], false)
            ),
            Verdict::Match
        );
        let nx = Ok(Reply {
            rcode: ResponseCode::NXDomain,
            authoritative: true,
            ..Reply::default()
        });
        assert!(
            matches!(judge(ServerKind::Authoritative, &Expected::address(WANT), &nx), Verdict::Mismatch(m) if m.contains("Non-Existent"))
        );
        let down = Err(QueryError::Timeout("10.250.0.10:53".parse().unwrap(), 2000));
        assert!(matches!(
            judge(ServerKind::Authoritative, &Expected::address(WANT), &down),
            Verdict::Unreachable(_)
        ));
    }

    /// A message as BIND would send it for `asked` at `name`, through
    /// the wire and back, summarised.
    fn answered(name: &str, asked: RecordType, answers: Vec<RData>) -> Reply {
        use hickory_proto::rr::Record;
        let owner = Name::from_ascii(name).unwrap();
        let mut m = Message::new(7, MessageType::Response, hickory_proto::op::OpCode::Query);
        m.metadata.authoritative = true;
        m.add_query(Query::query(owner.clone(), asked));
        for data in answers {
            m.add_answer(Record::from_rdata(owner.clone(), 300, data));
        }
        summarise(&Message::from_vec(&m.to_vec().unwrap()).unwrap(), asked)
    }

    /// What the inventory's records of one name and type expect.
    fn expect(records: &[(RecordKind, &str)]) -> Expected {
        let records: Vec<ZoneRecord> = records
            .iter()
            .map(|(kind, value)| ZoneRecord {
                owner: "@".into(),
                kind: *kind,
                data: RecordData::parse(*kind, value, "foobar.com").unwrap(),
            })
            .collect();
        let mut groups = Expected::of_records(&records, "foobar.com");
        assert_eq!(groups.len(), 1);
        groups.remove(0).1
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn records_compare_by_their_data_whatever_the_case_and_the_strings() {
        use hickory_proto::rr::rdata::{CAA, CNAME, MX, SRV, TXT};
        let judged = |expected: &Expected, reply: Reply| {
            judge(ServerKind::Authoritative, expected, &Ok(reply))
        };
        let mx = expect(&[
            (RecordKind::MX, "10 mail.example.net."),
            (RecordKind::MX, "20 backup"),
        ]);
        let both = answered(
            "foobar.com.",
            RecordType::MX,
            vec![
                RData::MX(MX::new(20, name("BACKUP.foobar.com."))),
                RData::MX(MX::new(10, name("mail.example.net."))),
            ],
        );
        assert_eq!(judged(&mx, both), Verdict::Match);
        let one = answered(
            "foobar.com.",
            RecordType::MX,
            vec![RData::MX(MX::new(10, name("mail.example.net.")))],
        );
        assert_eq!(
            judged(&mx, one),
            Verdict::Mismatch(
                "expected 10 mail.example.net., 20 backup.foobar.com., found 10 mail.example.net."
                    .into()
            )
        );

        // A DKIM key longer than 255 bytes comes in several strings: the
        // check compares them joined.
        let key = format!("v=DKIM1; k=rsa; p={}", "Q".repeat(400));
        let dkim = expect(&[(RecordKind::TXT, &key)]);
        let split = RData::TXT(TXT::new(vec![
            key[..255].to_string(),
            key[255..].to_string(),
        ]));
        let reply = answered("s1._domainkey.foobar.com.", RecordType::TXT, vec![split]);
        assert_eq!(reply.data.len(), 1, "one record");
        assert_eq!(judged(&dkim, reply), Verdict::Match);
        let cut = RData::TXT(TXT::new(vec![key[..255].to_string()]));
        let reply = answered("s1._domainkey.foobar.com.", RecordType::TXT, vec![cut]);
        assert!(matches!(judged(&dkim, reply), Verdict::Mismatch(_)));
        // SPF and a verification string at one name: two records.
        let txt = expect(&[
            (RecordKind::TXT, "v=spf1 include:_spf.example.net -all"),
            (RecordKind::TXT, r#"say \"hi\""#),
        ]);
        let reply = answered(
            "foobar.com.",
            RecordType::TXT,
            vec![
                RData::TXT(TXT::new(
                    vec!["v=spf1 include:_spf.example.net -all".into()],
                )),
                RData::TXT(TXT::new(vec!["say \"hi\"".into()])),
                RData::TXT(TXT::new(vec!["google-site-verification=x".into()])),
            ],
        );
        assert_eq!(
            judged(&txt, reply),
            Verdict::Mismatch(
                "expected only \"say \\\"hi\\\"\", \"v=spf1 include:_spf.example.net -all\", found also \"google-site-verification=x\"".into()
            )
        );

        let caa = expect(&[(RecordKind::CAA, "0 issue \"letsencrypt.org\"")]);
        let reply = answered(
            "foobar.com.",
            RecordType::CAA,
            vec![RData::CAA(CAA::new_issue(
                false,
                Some(name("letsencrypt.org")),
                vec![],
            ))],
        );
        assert_eq!(judged(&caa, reply), Verdict::Match);
        let other_ca = answered(
            "foobar.com.",
            RecordType::CAA,
            vec![RData::CAA(CAA::new_issue(
                false,
                Some(name("pki.goog")),
                vec![],
            ))],
        );
        assert_eq!(
            judged(&caa, other_ca),
            Verdict::Mismatch(
                "expected 0 issue \"letsencrypt.org\", found 0 issue \"pki.goog\"".into()
            )
        );

        let srv = expect(&[(RecordKind::SRV, "10 5 5060 sip.example.net.")]);
        let reply = answered(
            "_sip._tcp.foobar.com.",
            RecordType::SRV,
            vec![RData::SRV(SRV::new(10, 5, 5060, name("sip.example.net.")))],
        );
        assert_eq!(judged(&srv, reply), Verdict::Match);

        let cname = expect(&[(RecordKind::CNAME, "www")]);
        let reply = answered(
            "blog.foobar.com.",
            RecordType::CNAME,
            vec![RData::CNAME(CNAME(name("www.foobar.com.")))],
        );
        assert_eq!(judged(&cname, reply), Verdict::Match);
        // Asked for a CNAME's records of another type, BIND answers the
        // CNAME and its target's: only the type asked counts.
        let reply = answered(
            "blog.foobar.com.",
            RecordType::MX,
            vec![RData::CNAME(CNAME(name("www.foobar.com.")))],
        );
        assert!(reply.data.is_empty());
        assert_eq!(
            judged(&mx, reply),
            Verdict::Mismatch(
                "expected 10 mail.example.net., 20 backup.foobar.com., found no MX record".into()
            )
        );
    }

    #[test]
    fn a_truncated_answer_is_not_taken_for_the_records() {
        let mut reply = reply(&[WANT], true).unwrap();
        reply.truncated = true;
        assert!(matches!(
            judge(ServerKind::Authoritative, &Expected::address(WANT), &Ok(reply)),
            Verdict::Mismatch(m) if m.contains("TC flag")
        ));
    }

    #[test]
    fn records_are_grouped_by_name_and_type() {
        let records: Vec<ZoneRecord> = [
            ("@", RecordKind::TXT, "v=spf1 -all"),
            ("_dmarc", RecordKind::TXT, "v=DMARC1; p=reject"),
            ("@", RecordKind::MX, "10 mail"),
            ("@", RecordKind::TXT, "verify=1"),
        ]
        .iter()
        .map(|(owner, kind, value)| ZoneRecord {
            owner: owner.to_string(),
            kind: *kind,
            data: RecordData::parse(*kind, value, "foobar.com").unwrap(),
        })
        .collect();
        let groups: Vec<(String, RecordType, usize)> = Expected::of_records(&records, "foobar.com")
            .into_iter()
            .map(|(n, e)| (n, e.record_type, e.data.len()))
            .collect();
        assert_eq!(
            groups,
            [
                ("foobar.com".to_string(), RecordType::TXT, 2),
                ("_dmarc.foobar.com".to_string(), RecordType::TXT, 1),
                ("foobar.com".to_string(), RecordType::MX, 1),
            ]
        );
    }

    #[test]
    fn serial_disagreement_is_flagged() {
        let same = [("ns1".to_string(), Some(1)), ("ns2".to_string(), Some(1))];
        assert_eq!(serials_disagree(&same), None);
        let differ = [("ns1".to_string(), Some(1)), ("ns2".to_string(), Some(2))];
        assert_eq!(
            serials_disagree(&differ).unwrap(),
            "SOA serials disagree (ns1: 1, ns2: 2)"
        );
    }

    #[test]
    fn server_addresses() {
        assert_eq!(
            parse_server("10.0.0.1").unwrap(),
            "10.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("10.0.0.1:5353").unwrap(),
            "10.0.0.1:5353".parse().unwrap()
        );
        assert!(parse_server("example.com").is_err());
        assert!(parse_server("10.0.0.1:99999").is_err());
    }
}
