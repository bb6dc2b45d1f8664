//! `domain.records`: the zone's records besides those foobar writes itself
//! (the apex, the web host and the nameservers). Each value is parsed into
//! its parts by its type, and the zone file gets the parts written anew,
//! quoted and escaped, never the inventory's text: nothing in a value can
//! reach the zone file as syntax.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::values::{check_label, check_record_target, printable, RecordName, RecordValue};

/// One record of `domain.records`, as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// `@`, a name in the zone (`blog`, `_dmarc`), or a full name with a
    /// trailing dot (`blog.foobar.com.`).
    pub name: RecordName,
    #[serde(rename = "type")]
    pub kind: RecordKind,
    /// The record's data as DNS writes it: `10 mail.example.net.` (MX),
    /// the text itself (TXT), `0 issue "letsencrypt.org"` (CAA), ...
    pub value: RecordValue,
}

/// The record types `domain.records` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordKind {
    A,
    AAAA,
    CNAME,
    MX,
    TXT,
    CAA,
    SRV,
}

impl RecordKind {
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::A => "A",
            RecordKind::AAAA => "AAAA",
            RecordKind::CNAME => "CNAME",
            RecordKind::MX => "MX",
            RecordKind::TXT => "TXT",
            RecordKind::CAA => "CAA",
            RecordKind::SRV => "SRV",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A TXT record's text longer than this is refused: its answer must fit
/// the 4096 bytes dns-check asks for (a 4096-bit DKIM key takes ~800).
const MAX_TXT_BYTES: usize = 2048;

/// DNS's limit on one character-string: longer text is split into
/// several strings of one TXT record, which readers join.
const CHARACTER_STRING: usize = 255;

/// A record's data, parsed from its value. Names are absolute, lowercase,
/// with the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    Address(IpAddr),
    Alias(String),
    Mail {
        preference: u16,
        exchange: String,
    },
    Text(String),
    Caa {
        flags: u8,
        tag: String,
        value: String,
    },
    Service {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
}

impl RecordData {
    /// Parses `value` as the data of a `kind` record of `zone`; the error
    /// says what to write instead.
    pub fn parse(kind: RecordKind, value: &str, zone: &str) -> Result<Self, String> {
        let zone = &zone.to_ascii_lowercase();
        match kind {
            RecordKind::A => value
                .parse::<Ipv4Addr>()
                .map(|ip| RecordData::Address(ip.into()))
                .map_err(|_| {
                    format!(
                        "`{}` is not an IPv4 address: an A record holds one, like 203.0.113.10 (an IPv6 address goes in an AAAA record)",
                        printable(value)
                    )
                }),
            RecordKind::AAAA => value
                .parse::<Ipv6Addr>()
                .map(|ip| RecordData::Address(ip.into()))
                .map_err(|_| {
                    format!(
                        "`{}` is not an IPv6 address: an AAAA record holds one, like 2001:db8::10 (an IPv4 address goes in an A record)",
                        printable(value)
                    )
                }),
            RecordKind::CNAME => target(value, zone, false).map(RecordData::Alias),
            RecordKind::MX => {
                let [preference, exchange] = fields(value).ok_or_else(|| {
                    format!(
                        "`{}` is not an MX value: write the preference and the mail server, like `10 mail.example.net.`",
                        printable(value)
                    )
                })?;
                Ok(RecordData::Mail {
                    preference: number(preference, "MX preference", "10 mail.example.net.")?,
                    exchange: target(exchange, zone, true)?,
                })
            }
            RecordKind::TXT => unescape_text(value).map(RecordData::Text),
            RecordKind::CAA => parse_caa(value),
            RecordKind::SRV => {
                const EXAMPLE: &str = "10 5 5060 sip.example.net.";
                let [priority, weight, port, target_name] = fields(value).ok_or_else(|| {
                    format!(
                        "`{}` is not an SRV value: write priority, weight, port and target, like `{EXAMPLE}`",
                        printable(value)
                    )
                })?;
                Ok(RecordData::Service {
                    priority: number(priority, "SRV priority", EXAMPLE)?,
                    weight: number(weight, "SRV weight", EXAMPLE)?,
                    port: number(port, "SRV port", EXAMPLE)?,
                    target: target(target_name, zone, true)?,
                })
            }
        }
    }

    /// The data as the zone file writes it: TXT text split into strings
    /// of at most 255 bytes, each quoted and escaped.
    pub fn zone_text(&self) -> String {
        match self {
            RecordData::Text(text) => text
                .as_bytes()
                .chunks(CHARACTER_STRING)
                .map(quoted)
                .collect::<Vec<_>>()
                .join(" "),
            other => other.presentation(),
        }
    }

    /// The data as dns-check compares and shows it: as the zone file
    /// writes it, but a TXT record's strings joined into one.
    pub fn presentation(&self) -> String {
        match self {
            RecordData::Address(ip) => ip.to_string(),
            RecordData::Alias(name) => name.clone(),
            RecordData::Mail {
                preference,
                exchange,
            } => format!("{preference} {exchange}"),
            RecordData::Text(text) => quoted(text.as_bytes()),
            RecordData::Caa { flags, tag, value } => caa_text(*flags, tag, value.as_bytes()),
            RecordData::Service {
                priority,
                weight,
                port,
                target,
            } => format!("{priority} {weight} {port} {target}"),
        }
    }
}

/// A CAA record's data as dns-check and BIND show it: `0 issue "ca.org"`.
fn caa_text(flags: u8, tag: &str, value: &[u8]) -> String {
    format!("{flags} {} {}", tag.to_ascii_lowercase(), quoted(value))
}

/// One character-string of the zone file: in double quotes, with `"` and
/// `\` escaped and every byte outside printable ASCII as `\DDD`.
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// A record of the zone, parsed: its owner relative to the zone (`@`,
/// `blog`, `_dmarc`), lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRecord {
    pub owner: String,
    pub kind: RecordKind,
    pub data: RecordData,
}

impl ZoneRecord {
    /// The owner's full name, without the trailing dot.
    pub fn fqdn(&self, zone: &str) -> String {
        if self.owner == "@" {
            zone.to_string()
        } else {
            format!("{}.{zone}", self.owner)
        }
    }
}

/// A record of `domain.records` that cannot be: its index, the field at
/// fault (`name`, `type` or `value`) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub index: usize,
    pub field: &'static str,
    pub message: String,
}

/// Parses every record of `domain.records` for `zone`, where foobar writes
/// the address records of `foobar_names` itself (`@`, the web host, the
/// nameservers): those names take no A, AAAA or CNAME of the user's, and
/// a CNAME stands alone at its name.
pub fn parse_all(
    records: &[Record],
    zone: &str,
    foobar_names: &[String],
) -> Result<Vec<ZoneRecord>, RecordError> {
    let zone = &zone.to_ascii_lowercase();
    let mut parsed = Vec::with_capacity(records.len());
    for (index, r) in records.iter().enumerate() {
        let fail = |field, message| RecordError {
            index,
            field,
            message,
        };
        let owner = owner(r.name.as_str(), zone).map_err(|m| fail("name", m))?;
        let data =
            RecordData::parse(r.kind, r.value.as_str(), zone).map_err(|m| fail("value", m))?;
        if r.kind == RecordKind::SRV && !is_service_name(&owner) {
            return Err(fail(
                "name",
                format!(
                    "`{}` is not an SRV record's name: write `_service._protocol`, like `_sip._tcp` or `_imaps._tcp`",
                    r.name
                ),
            ));
        }
        let hosts = matches!(r.kind, RecordKind::A | RecordKind::AAAA | RecordKind::MX);
        if hosts && owner.contains('_') {
            return Err(fail(
                "name",
                format!(
                    "`{}` is not a host name: an {} record's name has letters, digits and `-` only (BIND refuses `_` there)",
                    r.name, r.kind
                ),
            ));
        }
        let foobars = foobar_names.contains(&owner);
        if owner == "@" && r.kind == RecordKind::CNAME {
            return Err(fail(
                "type",
                "the zone itself (`@`) holds its SOA and NS records, and a CNAME must stand alone at its name: point the apex at an address with foobar's own A record, or give the CNAME another name".into(),
            ));
        }
        if foobars && matches!(r.kind, RecordKind::A | RecordKind::AAAA | RecordKind::CNAME) {
            return Err(fail(
                "name",
                format!(
                    "foobar writes the address of `{owner}` itself (the web address or a nameserver's): remove this {} record, or give it another name",
                    r.kind
                ),
            ));
        }
        parsed.push(ZoneRecord {
            owner,
            kind: r.kind,
            data,
        });
    }
    for (index, cname) in parsed.iter().enumerate() {
        if cname.kind != RecordKind::CNAME {
            continue;
        }
        let beside = parsed
            .iter()
            .enumerate()
            .find(|(other, r)| *other != index && r.owner == cname.owner);
        if let Some((other, r)) = beside {
            return Err(RecordError {
                index,
                field: "type",
                message: format!(
                    "`{}` has a CNAME and also {} {} record (domain.records[{other}]): a CNAME must stand alone at its name; remove the other records or the CNAME",
                    cname.owner,
                    if matches!(r.kind, RecordKind::CNAME | RecordKind::TXT | RecordKind::CAA) { "a" } else { "an" },
                    r.kind
                ),
            });
        }
    }
    Ok(parsed)
}

/// The CAA issuer domain of the ACME CAs foobar knows, by their directory
/// URL's host. Another CA (the lab's Pebble, which checks no CAA, or a
/// private CA) gets no CAA record by default: name it in one yourself.
const KNOWN_CAS: &[(&str, &str)] = &[
    ("acme-v02.api.letsencrypt.org", "letsencrypt.org"),
    ("acme-staging-v02.api.letsencrypt.org", "letsencrypt.org"),
    ("dv.acme-v02.api.pki.goog", "pki.goog"),
    ("dv.acme-v02.test-api.pki.goog", "pki.goog"),
    ("acme.zerossl.com", "sectigo.com"),
    ("api.buypass.com", "buypass.com"),
    ("api.test4.buypass.no", "buypass.com"),
    ("acme.ssl.com", "ssl.com"),
];

/// The CAA record that lets only the ACME CA of `directory` issue
/// certificates for the zone, when foobar knows that CA.
pub fn default_caa(directory: &str) -> Option<ZoneRecord> {
    let host = directory
        .split_once("://")
        .map_or(directory, |(_, rest)| rest)
        .split(['/', ':'])
        .next()?;
    let (_, issuer) = KNOWN_CAS.iter().find(|(h, _)| *h == host)?;
    Some(ZoneRecord {
        owner: "@".into(),
        kind: RecordKind::CAA,
        data: RecordData::Caa {
            flags: 0,
            tag: "issue".into(),
            value: (*issuer).into(),
        },
    })
}

/// The owner relative to `zone`, lowercase: `@` for the zone itself.
fn owner(name: &str, zone: &str) -> Result<String, String> {
    let name = name.to_ascii_lowercase();
    let Some(absolute) = name.strip_suffix('.') else {
        return Ok(name);
    };
    if absolute == zone {
        return Ok("@".into());
    }
    absolute
        .strip_suffix(&format!(".{zone}"))
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "`{name}` is outside the zone {zone}: name a record in the zone, like `blog` or `blog.{zone}.`"
            )
        })
}

/// `_service._protocol`, and names below it (`_sip._tcp.eu`).
fn is_service_name(owner: &str) -> bool {
    let mut labels = owner.split('.');
    labels.next().is_some_and(|l| l.starts_with('_'))
        && labels.next().is_some_and(|l| l.starts_with('_'))
}

/// A name a record points at, absolute: `@` for the zone itself, a name
/// relative to the zone, or a full name with a trailing dot. A `host`
/// (an MX's or SRV's target) may be `.` (none: a null MX, an SRV without
/// service) and has no `_`: BIND's check-names refuses one there.
fn target(s: &str, zone: &str, host: bool) -> Result<String, String> {
    match s {
        "." if host => Ok(".".into()),
        "@" => Ok(format!("{zone}.")),
        _ => {
            check_record_target(s)?;
            if host && s.contains('_') {
                return Err(format!(
                    "`{}` is not a host name: an MX's or SRV's target has letters, digits and `-` only (BIND refuses `_` there)",
                    printable(s)
                ));
            }
            let s = s.to_ascii_lowercase();
            Ok(if s.ends_with('.') {
                s
            } else {
                format!("{s}.{zone}.")
            })
        }
    }
}

/// The value's whitespace-separated fields, exactly N of them.
fn fields<const N: usize>(value: &str) -> Option<[&str; N]> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    parts.try_into().ok()
}

fn number(s: &str, what: &str, example: &str) -> Result<u16, String> {
    s.parse::<u16>().map_err(|_| {
        format!(
            "bad {what} `{}`: write a number from 0 to 65535, like `{example}`",
            printable(s)
        )
    })
}

/// A TXT value as written: the text, with `\"` for a quote and `\\` for a
/// backslash; a bare quote is refused (a value pasted in zone-file
/// strings, `"v=DKIM1; " "p=..."`, most often).
fn unescape_text(value: &str) -> Result<String, String> {
    let mut text = String::with_capacity(value.len());
    let mut chars = value.chars().enumerate();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                return Err(format!(
                    "the text has an unescaped `\"` at character {}: write `\\\"` for a quote inside the text, and the whole text as one value without quoted parts (foobar splits text longer than 255 bytes into strings, as DNS requires)",
                    i + 1
                ))
            }
            '\\' => match chars.next() {
                Some((_, c @ ('"' | '\\'))) => text.push(c),
                _ => {
                    return Err(format!(
                        "the text has a `\\` at character {} that escapes neither `\"` nor `\\`: write `\\\\` for a backslash",
                        i + 1
                    ))
                }
            },
            c => text.push(c),
        }
    }
    if text.len() > MAX_TXT_BYTES {
        return Err(format!(
            "the text is {} bytes: a TXT record here holds at most {MAX_TXT_BYTES} (a 4096-bit DKIM key takes about 800)",
            text.len()
        ));
    }
    Ok(text)
}

/// `FLAGS TAG VALUE`, the value in double quotes or bare:
/// `0 issue "letsencrypt.org"`, `0 iodef "mailto:security@foobar.com"`.
fn parse_caa(value: &str) -> Result<RecordData, String> {
    const EXAMPLE: &str = "0 issue \"letsencrypt.org\"";
    let mut parts = value.trim().splitn(3, char::is_whitespace);
    let (Some(flags), Some(tag), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "`{}` is not a CAA value: write flags, tag and value, like `{EXAMPLE}`",
            printable(value)
        ));
    };
    let flags = flags.parse::<u8>().map_err(|_| {
        format!(
            "bad CAA flags `{}`: write 0 (or 128 for a critical tag), like `{EXAMPLE}`",
            printable(flags)
        )
    })?;
    let tag = tag.to_ascii_lowercase();
    let rest = rest.trim();
    let inner = match rest.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"').ok_or_else(|| {
            format!(
                "the CAA value `{}` opens a quote it does not close",
                printable(rest)
            )
        })?,
        None => rest,
    };
    if inner.is_empty()
        || !inner
            .chars()
            .all(|c| matches!(c, ' '..='~') && c != '"' && c != '\\')
    {
        return Err(format!(
            "the CAA value `{}` must be printable ASCII without `\"` or `\\`, like `{EXAMPLE}`",
            printable(rest)
        ));
    }
    match tag.as_str() {
        "issue" | "issuewild" => check_issuer(inner)?,
        "iodef" => {
            if !["mailto:", "https://", "http://"]
                .iter()
                .any(|p| inner.starts_with(p))
            {
                return Err(format!(
                    "the CAA iodef value `{}` must be a mailto: or https:// URL, like `0 iodef \"mailto:security@foobar.com\"`",
                    printable(inner)
                ));
            }
        }
        _ => {
            return Err(format!(
                "unknown CAA tag `{}`: use issue, issuewild or iodef, like `{EXAMPLE}`",
                printable(&tag)
            ))
        }
    }
    Ok(RecordData::Caa {
        flags,
        tag,
        value: inner.to_string(),
    })
}

/// An issue or issuewild value: `ca.org`, `ca.org; key=value; ...`, or `;`
/// (no CA may issue).
fn check_issuer(value: &str) -> Result<(), String> {
    let mut parts = value.split(';');
    let issuer = parts.next().unwrap_or_default().trim();
    let bad = || {
        format!(
            "the CAA issuer `{}` must be the CA's domain, with `; key=value` parameters if any (`letsencrypt.org; validationmethods=http-01`), or `;` for none",
            printable(value)
        )
    };
    if !issuer.is_empty() && issuer.split('.').try_for_each(check_label).is_err() {
        return Err(bad());
    }
    for parameter in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let ok = parameter.split_once('=').is_some_and(|(k, v)| {
            !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric())
                && !v.is_empty()
                && !v.contains(char::is_whitespace)
        });
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = "foobar.com";

    fn data(kind: RecordKind, value: &str) -> Result<RecordData, String> {
        RecordData::parse(kind, value, ZONE)
    }

    fn record(name: &str, kind: RecordKind, value: &str) -> Record {
        Record {
            name: RecordName::parse(name).unwrap(),
            kind,
            value: RecordValue::parse(value).unwrap(),
        }
    }

    fn foobar_names() -> Vec<String> {
        vec!["@".into(), "www".into(), "ns1".into()]
    }

    #[test]
    fn values_are_parsed_by_type() {
        use RecordKind::*;
        assert_eq!(
            data(MX, "10 mail.example.net.").unwrap().zone_text(),
            "10 mail.example.net."
        );
        assert_eq!(
            data(MX, "0 mail").unwrap().zone_text(),
            "0 mail.foobar.com.",
            "relative to the zone"
        );
        assert_eq!(data(MX, "0 .").unwrap().zone_text(), "0 .", "null MX");
        assert_eq!(data(CNAME, "WWW").unwrap().zone_text(), "www.foobar.com.");
        assert_eq!(data(CNAME, "@").unwrap().zone_text(), "foobar.com.");
        assert_eq!(
            data(SRV, "10 5 5060 sip.example.net.").unwrap().zone_text(),
            "10 5 5060 sip.example.net."
        );
        assert_eq!(
            data(CAA, "0 issue letsencrypt.org").unwrap().zone_text(),
            "0 issue \"letsencrypt.org\""
        );
        assert_eq!(
            data(CAA, "128 ISSUE \"ca.org; validationmethods=http-01\"")
                .unwrap()
                .zone_text(),
            "128 issue \"ca.org; validationmethods=http-01\""
        );
        assert_eq!(data(A, "203.0.113.5").unwrap().zone_text(), "203.0.113.5");
        assert_eq!(
            data(AAAA, "2001:db8::5").unwrap().zone_text(),
            "2001:db8::5"
        );
    }

    #[test]
    fn bad_values_say_what_to_write() {
        use RecordKind::*;
        let err = |k, v| data(k, v).unwrap_err();
        assert!(err(MX, "ten mail.example.net.").contains("bad MX preference `ten`"));
        assert!(err(MX, "70000 mail.example.net.").contains("0 to 65535"));
        assert!(err(MX, "mail.example.net.").contains("not an MX value"));
        assert!(err(A, "10.0.0.300").contains("not an IPv4 address"));
        assert!(err(A, "2001:db8::1").contains("AAAA"));
        assert!(err(AAAA, "10.0.0.1").contains("not an IPv6 address"));
        assert!(err(CNAME, "bad name").contains("not a domain name"));
        assert!(err(CNAME, ".").contains("not a domain name"));
        assert!(err(MX, "10 _mail").contains("not a host name"));
        assert_eq!(
            data(CNAME, "s1._domainkey.mail.example.net.")
                .unwrap()
                .zone_text(),
            "s1._domainkey.mail.example.net.",
            "a CNAME may point at any name"
        );
        assert!(err(SRV, "10 5 sip.example.net.").contains("not an SRV value"));
        assert!(err(SRV, "10 5 99999 sip.example.net.").contains("bad SRV port"));
        assert!(err(CAA, "0 issue").contains("not a CAA value"));
        assert!(err(CAA, "0 policy \"x\"").contains("unknown CAA tag `policy`"));
        assert!(err(CAA, "300 issue \"ca.org\"").contains("bad CAA flags"));
        assert!(err(CAA, "0 issue \"ca.org").contains("does not close"));
        assert!(err(CAA, "0 issue \"ca\"org\"").contains("without `\"`"));
        assert!(err(CAA, "0 issue \"bad name.org\"").contains("CA's domain"));
        assert!(err(CAA, "0 iodef \"security@foobar.com\"").contains("mailto:"));
        assert!(err(TXT, "say \"hi\"").contains("unescaped `\"` at character 5"));
        assert!(err(TXT, r"a \n b").contains("escapes neither"));
        assert!(err(TXT, &"x".repeat(MAX_TXT_BYTES + 1)).contains("at most"));
    }

    #[test]
    fn text_is_escaped_and_split_into_strings_of_255_bytes() {
        let text = data(RecordKind::TXT, r#"say \"hi\" \\ ; $ORIGIN evil. é"#).unwrap();
        assert_eq!(
            text.zone_text(),
            r#""say \"hi\" \\ ; $ORIGIN evil. \195\169""#,
            "one string, nothing outside its quotes"
        );
        let key = format!("v=DKIM1; k=rsa; p={}", "A".repeat(600));
        let long = data(RecordKind::TXT, &key).unwrap();
        assert_eq!(
            long.zone_text(),
            format!(
                "\"{}\" \"{}\" \"{}\"",
                &key[..255],
                &key[255..510],
                &key[510..]
            ),
            "strings of 255 bytes, which readers join"
        );
        assert_eq!(long.presentation(), format!("\"{key}\""));
    }

    #[test]
    fn names_are_relative_to_the_zone() {
        let parsed = parse_all(
            &[
                record("Blog.foobar.com.", RecordKind::CNAME, "www"),
                record("foobar.com.", RecordKind::MX, "10 mail"),
                record("_sip._tcp", RecordKind::SRV, "0 0 5060 sip"),
            ],
            ZONE,
            &foobar_names(),
        )
        .unwrap();
        let owners: Vec<_> = parsed.iter().map(|r| r.owner.as_str()).collect();
        assert_eq!(owners, ["blog", "@", "_sip._tcp"]);
        assert_eq!(parsed[0].fqdn(ZONE), "blog.foobar.com");
        assert_eq!(parsed[1].fqdn(ZONE), "foobar.com");
        let e = parse_all(
            &[record("blog.example.net.", RecordKind::A, "10.0.0.1")],
            ZONE,
            &foobar_names(),
        )
        .unwrap_err();
        assert_eq!((e.index, e.field), (0, "name"));
        assert!(e.message.contains("outside the zone foobar.com"), "{e:?}");
        let e = parse_all(
            &[record("_mail", RecordKind::MX, "10 mail")],
            ZONE,
            &foobar_names(),
        )
        .unwrap_err();
        assert!(e.message.contains("not a host name"), "{e:?}");
        let e = parse_all(
            &[record("sip", RecordKind::SRV, "0 0 5060 sip")],
            ZONE,
            &foobar_names(),
        )
        .unwrap_err();
        assert!(e.message.contains("_service._protocol"), "{e:?}");
    }

    #[test]
    fn a_cname_stands_alone_and_foobars_names_keep_their_addresses() {
        let check = |records: &[Record]| parse_all(records, ZONE, &foobar_names());
        let e = check(&[
            record("blog", RecordKind::TXT, "hello"),
            record("blog", RecordKind::CNAME, "www"),
        ])
        .unwrap_err();
        assert_eq!((e.index, e.field), (1, "type"));
        assert!(
            e.message.contains("also a TXT record (domain.records[0])"),
            "{e:?}"
        );
        let e = check(&[record("@", RecordKind::CNAME, "www")]).unwrap_err();
        assert!(e.message.contains("SOA and NS"), "{e:?}");
        for name in ["www", "NS1", "www.foobar.com."] {
            let e = check(&[record(name, RecordKind::CNAME, "blog")]).unwrap_err();
            assert!(
                e.message.contains("foobar writes the address"),
                "{name}: {e:?}"
            );
        }
        let e = check(&[record("@", RecordKind::A, "10.0.0.1")]).unwrap_err();
        assert!(e.message.contains("remove this A record"), "{e:?}");
        // Beside foobar's addresses, other types are welcome.
        assert!(check(&[
            record("@", RecordKind::MX, "10 mail.example.net."),
            record("www", RecordKind::TXT, "verify=1"),
            record("@", RecordKind::TXT, "v=spf1 -all"),
        ])
        .is_ok());
    }

    #[test]
    fn known_acme_cas_get_their_caa() {
        let caa = |d: &str| default_caa(d).map(|r| r.data.zone_text());
        assert_eq!(
            caa("https://acme-v02.api.letsencrypt.org/directory").as_deref(),
            Some("0 issue \"letsencrypt.org\"")
        );
        assert_eq!(
            caa("https://dv.acme-v02.api.pki.goog/directory").as_deref(),
            Some("0 issue \"pki.goog\"")
        );
        assert_eq!(
            caa("https://10.247.0.1:14000/dir"),
            None,
            "the lab's Pebble"
        );
    }
}
