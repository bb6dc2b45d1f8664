//! DNS for `foobar dns-check`: one query to one server (hickory-proto
//! messages over UDP), and the pure rules that judge the answers.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;
use tokio::net::UdpSocket;

/// What one server answered to one question.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reply {
    #[serde(serialize_with = "rcode_text")]
    pub rcode: ResponseCode,
    pub authoritative: bool,
    /// A and AAAA records.
    pub addresses: BTreeSet<IpAddr>,
    /// Lowest TTL of the A records.
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
        let mut buf = vec![0u8; 4096];
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
    Ok(summarise(&reply))
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

fn summarise(m: &Message) -> Reply {
    let mut r = Reply {
        rcode: m.metadata.response_code,
        authoritative: m.metadata.authoritative,
        ..Reply::default()
    };
    for rec in &m.answers {
        match &rec.data {
            RData::A(a) => {
                r.addresses.insert(IpAddr::V4(a.0));
                r.ttl = Some(r.ttl.map_or(rec.ttl, |t| t.min(rec.ttl)));
            }
            RData::AAAA(a) => {
                r.addresses.insert(IpAddr::V6(a.0));
                r.ttl = Some(r.ttl.map_or(rec.ttl, |t| t.min(rec.ttl)));
            }
            RData::SOA(soa) => r.soa_serial = Some(soa.serial),
            RData::NS(ns) => r
                .ns_names
                .push(ns.0.to_ascii().trim_end_matches('.').to_string()),
            _ => {}
        }
    }
    r
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

/// Judges one answer for `expected`.
/// The record type that holds `ip`: A or AAAA.
pub fn record_type(ip: IpAddr) -> RecordType {
    if ip.is_ipv4() {
        RecordType::A
    } else {
        RecordType::AAAA
    }
}

pub fn judge(kind: ServerKind, expected: IpAddr, reply: &Result<Reply, QueryError>) -> Verdict {
    let r = match reply {
        Err(e) => return Verdict::Unreachable(e.to_string()),
        Ok(r) => r,
    };
    if r.rcode != ResponseCode::NoError {
        return Verdict::Mismatch(format!("expected {expected}, found {}", r.rcode));
    }
    if kind == ServerKind::Authoritative && !r.authoritative {
        return Verdict::Mismatch("the answer is not authoritative (AA flag unset)".into());
    }
    if r.addresses.is_empty() {
        return Verdict::Mismatch(format!("expected {expected}, found no A record"));
    }
    if !r.addresses.contains(&expected) {
        return Verdict::Mismatch(format!("expected {expected}, found {}", list(&r.addresses)));
    }
    if r.addresses.len() > 1 {
        let extra: BTreeSet<IpAddr> = r
            .addresses
            .iter()
            .copied()
            .filter(|a| *a != expected)
            .collect();
        return Verdict::Mismatch(format!(
            "expected only {expected}, found also {}",
            list(&extra)
        ));
    }
    Verdict::Match
}

/// Asks one server for `name` (`expected`'s record type) and judges the
/// answer: what dns-check, status and a DNS restart's check all do.
pub async fn ask(
    server: SocketAddr,
    kind: ServerKind,
    name: &str,
    expected: IpAddr,
    timeout: Duration,
) -> (Verdict, Option<Reply>) {
    let recursion = kind == ServerKind::Resolver;
    let reply = query(server, name, record_type(expected), recursion, timeout).await;
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

fn list(addrs: &BTreeSet<IpAddr>) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
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
            addresses: addrs.iter().copied().collect(),
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
            judge(ServerKind::Authoritative, WANT, &reply(&[WANT], true)),
            Verdict::Match
        );
        let other = IpAddr::V4(Ipv4Addr::new(10, 250, 0, 99));
        assert_eq!(
            judge(ServerKind::Authoritative, WANT, &reply(&[other], true)),
            Verdict::Mismatch("expected 10.250.0.10, found 10.250.0.99".into())
        );
        assert!(matches!(
            judge(ServerKind::Authoritative, WANT, &reply(&[WANT, other], true)),
            Verdict::Mismatch(m) if m.contains("found also 10.250.0.99")
        ));
        assert!(matches!(
            judge(ServerKind::Authoritative, WANT, &reply(&[WANT], false)),
            Verdict::Mismatch(m) if m.contains("not authoritative")
        ));
        assert_eq!(
            judge(ServerKind::Resolver, WANT, &reply(&[WANT], false)),
            Verdict::Match
        );
        let nx = Ok(Reply {
            rcode: ResponseCode::NXDomain,
            authoritative: true,
            ..Reply::default()
        });
        assert!(
            matches!(judge(ServerKind::Authoritative, WANT, &nx), Verdict::Mismatch(m) if m.contains("Non-Existent"))
        );
        let down = Err(QueryError::Timeout("10.250.0.10:53".parse().unwrap(), 2000));
        assert!(matches!(
            judge(ServerKind::Authoritative, WANT, &down),
            Verdict::Unreachable(_)
        ));
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
