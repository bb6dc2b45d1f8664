//! `galera`: this MariaDB runs as a member of its Galera cluster, in the
//! primary component. The plan sees the same step's facts on every other
//! member (`Kind::peer_group`), so every member takes the same decision:
//! join when a member already runs in the primary component; otherwise
//! (a pristine cluster, or every member stopped at once) bootstrap from
//! the most advanced member only (its `grastate.dat` seqno, or the
//! position `galera_recovery` reads from InnoDB after a crash) and join
//! the others after it. It refuses when a member that may hold the latest
//! writes cannot be asked.

use serde::{Deserialize, Serialize};

use super::parts::{deferred_fact_script, PEER_LINE, PEER_UNREACHABLE};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::roles::SYNCED_WAIT;
use crate::shell::quote;

pub struct Galera;

const GRASTATE: &str = "/var/lib/mysql/grastate.dat";
/// A cluster that never ran has this uuid in grastate.dat.
const NO_UUID: &str = "00000000-0000-0000-0000-000000000000";
/// Galera's group communication port: a member that listens there runs.
const GROUP_PORT: u16 = 4567;
/// How long a joining member waits for the member that bootstraps.
const JOIN_WAIT_SECS: u32 = 300;
/// How long it waits when the members that could not be asked are the
/// only ones that could be running.
const UNKNOWN_WAIT_SECS: u32 = 10;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// This member's name (templated: `{{ server.name }}`).
    pub node: String,
    /// Every member as `name=address`, space-separated, in inventory order
    /// (templated).
    pub members: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub address: std::net::IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub node: String,
    pub members: Vec<Member>,
}

/// What one member reports of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeState {
    /// mariadb.service is active.
    pub active: bool,
    /// `wsrep_cluster_status` is Primary (with wsrep on).
    pub primary: bool,
    /// `wsrep_local_state_comment`.
    pub state: String,
    /// The cluster's uuid in grastate.dat; None when it never ran one.
    pub uuid: Option<String>,
    /// Its last committed position: grastate.dat's seqno after a clean
    /// stop, the recovered one after a crash, `wsrep_last_committed` when
    /// running. None when unknown.
    pub seqno: Option<i64>,
    pub safe_to_bootstrap: bool,
}

impl NodeState {
    fn parse<'a>(lines: impl Iterator<Item = &'a str>) -> Self {
        let mut s = Self::default();
        let mut wsrep_on = false;
        let mut cluster_primary = false;
        for line in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["A", state] => s.active = *state == "active",
                ["W", "wsrep_on", v] => wsrep_on = *v == "ON",
                ["W", "wsrep_cluster_status", v] => cluster_primary = *v == "Primary",
                ["W", "wsrep_local_state_comment", v] => s.state = v.to_string(),
                ["W", "wsrep_last_committed", v] => s.seqno = v.parse().ok().filter(|n| *n >= 0),
                ["G", "uuid", v] => s.uuid = Some(v.to_string()).filter(|u| u != NO_UUID),
                ["G", "seqno", v] if s.seqno.is_none() => {
                    s.seqno = v.parse().ok().filter(|n| *n >= 0)
                }
                ["G", "safe_to_bootstrap", v] => s.safe_to_bootstrap = *v == "1",
                // galera_recovery: --wsrep_start_position=UUID:SEQNO
                ["R", position] => {
                    if let Some((uuid, seqno)) = position.rsplit_once(':') {
                        s.uuid = Some(uuid.to_string()).filter(|u| u != NO_UUID);
                        s.seqno = seqno.parse().ok().filter(|n| *n >= 0);
                    }
                }
                _ => {}
            }
        }
        s.primary = s.active && wsrep_on && cluster_primary;
        s
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fact {
    pub node: NodeState,
    /// The other members by name; None: it could not be asked.
    pub peers: std::collections::BTreeMap<String, Option<NodeState>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Start a new cluster here, from this member's data.
    Bootstrap { seqno: Option<i64> },
    /// Join the cluster (once a member answers), by IST or SST; with
    /// `unless`, a member that cannot be asked may be the one running:
    /// wait briefly, then refuse with that reason.
    Join { unless: Option<String> },
    /// Why it cannot go on.
    Refuse(String),
}

/// The member a cluster that runs nowhere must start from, or why none
/// can be chosen. Members in inventory order.
fn bootstrap_member<'a>(
    members: &'a [Member],
    states: &[Option<&NodeState>],
) -> Result<&'a str, String> {
    let unknown: Vec<&str> = members
        .iter()
        .zip(states)
        .filter(|(_, s)| s.is_none())
        .map(|(m, _)| m.name.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "the cluster runs nowhere and {} cannot be asked: it may hold the latest writes; bring it back and provision again (or remove it from the inventory)",
            unknown.join(", ")
        ));
    }
    let known: Vec<(&Member, &NodeState)> = members
        .iter()
        .zip(states)
        .filter_map(|(m, s)| Some((m, (*s)?)))
        .collect();
    let with_data: Vec<&(&Member, &NodeState)> =
        known.iter().filter(|(_, s)| s.uuid.is_some()).collect();
    let Some((first_member, first)) = with_data.first() else {
        // A new cluster: the first member starts it.
        return Ok(&members[0].name);
    };
    if let Some((m, s)) = with_data.iter().find(|(_, s)| s.uuid != first.uuid) {
        return Err(format!(
            "{} and {} hold the data of different clusters ({} and {}): move aside the data directory (/var/lib/mysql) of the one that must join the other",
            first_member.name,
            m.name,
            first.uuid.as_deref().unwrap_or_default(),
            s.uuid.as_deref().unwrap_or_default()
        ));
    }
    if let Some((m, _)) = with_data.iter().find(|(_, s)| s.seqno.is_none()) {
        return Err(format!(
            "the last position of {} is unknown (galera_recovery failed there): see `journalctl -u mariadb` on it",
            m.name
        ));
    }
    // The highest position; among equals the one Galera marked safe, then
    // the first in the inventory.
    let best = with_data
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, s))| (s.seqno, s.safe_to_bootstrap, std::cmp::Reverse(*i)))
        .map(|(_, (m, _))| m.name.as_str())
        .expect("with_data is not empty");
    Ok(best)
}

impl Kind for Galera {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Change;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let node = cx.field("node", &args.node)?;
        let mut members = Vec::new();
        for entry in cx.field("members", &args.members)?.split_whitespace() {
            let parsed = entry.split_once('=').and_then(|(name, address)| {
                let ok = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
                Some(Member {
                    name: ok.then(|| name.to_string())?,
                    address: address.parse().ok()?,
                })
            });
            members.push(parsed.ok_or_else(|| {
                cx.error(format!("members: `{entry}` is not `name=address`"))
            })?);
        }
        if !members.iter().any(|m| m.name == node) {
            return Err(cx.error(format!("node `{node}` is not one of the members")));
        }
        Ok(Desired { node, members })
    }

    fn label(_: &Desired) -> String {
        "galera member".to_string()
    }

    fn peer_group(_: &Desired) -> Option<&'static str> {
        Some("galera")
    }

    /// The member that bootstraps goes first, then inventory order: one
    /// member at a time, so a restart never takes two down at once.
    fn turn(d: &Desired, f: &Fact, cx: &PlanCx) -> usize {
        let index = d.members.iter().position(|m| m.name == d.node).unwrap_or(0);
        match Self::plan(d, f, cx) {
            Some(Change::Bootstrap { .. }) => 0,
            _ => index + 1,
        }
    }

    fn fact_script(_: &Desired) -> String {
        let status = "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_last_committed'); SHOW GLOBAL VARIABLES LIKE 'wsrep_on'";
        // After a crash grastate.dat says seqno -1: the position is read
        // from InnoDB (galera_recovery), only while MariaDB is stopped.
        deferred_fact_script(&format!(
            "a=$(systemctl is-active mariadb)\n\
             printf 'A\\t%s\\n' \"$a\"\n\
             if [ \"$a\" = active ]; then mariadb -N -B -e {status} | sed 's/^/W\\t/'; fi\n\
             if [ -f {g} ]; then sed -n 's/^\\(uuid\\|seqno\\|safe_to_bootstrap\\):[[:space:]]*/G\\t\\1\\t/p' {g}; fi\n\
             if [ \"$a\" != active ] && grep -q '^seqno:[[:space:]]*-1' {g} && command -v galera_recovery >/dev/null; then\n\
             \x20 galera_recovery 2>/dev/null | sed -n 's/^--wsrep_start_position=/R\\t/p'\n\
             fi",
            status = quote(status),
            g = GRASTATE,
        ))
    }

    fn parse_fact(output: &str) -> Fact {
        let mut peers: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
        let mut unreachable = Vec::new();
        let mut own = Vec::new();
        for line in output.lines() {
            if let Some(rest) = line.strip_prefix(PEER_LINE) {
                if let Some((host, l)) = rest.split_once('\t') {
                    peers.entry(host.to_string()).or_default().push(l);
                } else {
                    peers.entry(rest.to_string()).or_default();
                }
            } else if let Some(host) = line.strip_prefix(PEER_UNREACHABLE) {
                unreachable.push(host.to_string());
            } else {
                own.push(line);
            }
        }
        let mut fact = Fact {
            node: NodeState::parse(own.into_iter()),
            peers: peers
                .into_iter()
                .map(|(h, lines)| (h, Some(NodeState::parse(lines.into_iter()))))
                .collect(),
        };
        for host in unreachable {
            fact.peers.insert(host, None);
        }
        fact
    }

    fn plan(d: &Desired, f: &Fact, _: &PlanCx) -> Option<Change> {
        if f.node.primary {
            return None;
        }
        let state = |m: &Member| {
            if m.name == d.node {
                Some(&f.node)
            } else {
                f.peers.get(&m.name).and_then(Option::as_ref)
            }
        };
        if d.members.iter().filter_map(state).any(|s| s.primary) {
            return Some(Change::Join { unless: None });
        }
        let states: Vec<Option<&NodeState>> = d.members.iter().map(state).collect();
        Some(match bootstrap_member(&d.members, &states) {
            Ok(first) if first == d.node => Change::Bootstrap { seqno: f.node.seqno },
            Ok(_) => Change::Join { unless: None },
            // Never a bootstrap: but one of them may run the cluster.
            Err(why) if states.iter().any(Option::is_none) => Change::Join { unless: Some(why) },
            Err(why) => Change::Refuse(why),
        })
    }

    fn describe(c: &Change) -> String {
        match c {
            Change::Bootstrap { seqno: Some(n) } => {
                format!("bootstrap the cluster here (the most advanced member, seqno {n})")
            }
            Change::Bootstrap { seqno: None } => "bootstrap a new cluster here".into(),
            Change::Join { unless: None } => "join the cluster".into(),
            Change::Join { unless: Some(why) } => {
                format!("join the cluster if a member runs it (else: {why})")
            }
            Change::Refuse(why) => format!("cannot start the cluster: {why}"),
        }
    }

    fn script(d: &Desired, c: &Change, _: Option<&str>) -> Script {
        Script::new(match c {
            // galera_new_cluster restarts the unit with --wsrep-new-cluster
            // (it stops a server MariaDB's package started on its own);
            // only here is grastate.dat marked safe to start from.
            Change::Bootstrap { .. } => format!(
                "systemctl stop mariadb\n\
                 if [ -f {g} ]; then sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' {g}; fi\n\
                 galera_new_cluster || {{ journalctl -u mariadb -n 20 --no-pager >&2; exit 1; }}\n\
                 {SYNCED_WAIT}",
                g = GRASTATE
            ),
            Change::Join { unless } => {
                let (wait, give_up) = match unless {
                    None => (JOIN_WAIT_SECS, "no member of the cluster answers".to_string()),
                    Some(why) => (UNKNOWN_WAIT_SECS, format!("no member answers, and {why}")),
                };
                let peers: Vec<String> = d
                    .members
                    .iter()
                    .filter(|m| m.name != d.node)
                    .map(|m| quote(&m.address.to_string()))
                    .collect();
                format!(
                    "i=0\n\
                     until for p in {peers}; do timeout 1 bash -c \"</dev/tcp/$p/{GROUP_PORT}\" 2>/dev/null && break; false; done; do\n\
                     \x20 i=$((i + 1)); [ $i -lt {wait} ] || {{ echo {give_up} >&2; exit 1; }}; sleep 1\n\
                     done\n\
                     # A joiner's transfer left over by a server that died\n\
                     # mid-way would hold the port of the next ([w]: not\n\
                     # this script's own command line).\n\
                     if ! systemctl is-active --quiet mariadb; then pkill -f '[w]srep_sst_mariabackup --role.*joiner' || true; pkill -f '[T]CP-LISTEN:4444' || true; fi\n\
                     systemctl restart mariadb || {{ journalctl -u mariadb -n 20 --no-pager >&2; exit 1; }}\n\
                     {SYNCED_WAIT}",
                    peers = peers.join(" "),
                    give_up = quote(&give_up),
                )
            }
            Change::Refuse(why) => format!("echo {} >&2\nexit 1\n", quote(why)),
        })
    }

    fn converged(_: &Desired, c: &Change, before: &Fact) -> Fact {
        let mut after = before.clone();
        if !matches!(c, Change::Refuse(_)) {
            after.node.active = true;
            after.node.primary = true;
            after.node.state = "Synced".into();
        }
        after
    }

    fn service(_: &Desired) -> Option<&str> {
        Some("mariadb")
    }

    fn starts_service(c: &Change) -> bool {
        !matches!(c, Change::Refuse(_))
    }

    fn refuses(c: &Change) -> bool {
        matches!(c, Change::Refuse(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(node: &str) -> Desired {
        Desired {
            node: node.into(),
            members: ["db1", "db2", "db3"]
                .iter()
                .enumerate()
                .map(|(i, n)| Member {
                    name: n.to_string(),
                    address: format!("10.0.0.{}", i + 1).parse().unwrap(),
                })
                .collect(),
        }
    }

    fn stopped(seqno: i64) -> NodeState {
        NodeState {
            uuid: Some("6f1c".into()),
            seqno: Some(seqno),
            ..Default::default()
        }
    }

    fn fact(own: NodeState, peers: &[(&str, Option<NodeState>)]) -> Fact {
        Fact {
            node: own,
            peers: peers
                .iter()
                .map(|(h, s)| (h.to_string(), s.clone()))
                .collect(),
        }
    }

    fn plan(node: &str, f: &Fact) -> Option<Change> {
        Galera::plan(&desired(node), f, &PlanCx { today: 0, rebuild: false })
    }

    #[test]
    fn after_a_power_cut_only_the_most_advanced_member_bootstraps() {
        // db2 committed the most; every member computes the same choice.
        let states = [("db1", stopped(7)), ("db2", stopped(9)), ("db3", stopped(8))];
        for (me, own) in &states {
            let peers: Vec<_> = states
                .iter()
                .filter(|(h, _)| h != me)
                .map(|(h, s)| (*h, Some(s.clone())))
                .collect();
            let f = fact(own.clone(), &peers);
            let want = if *me == "db2" {
                Change::Bootstrap { seqno: Some(9) }
            } else {
                Change::Join { unless: None }
            };
            assert_eq!(plan(me, &f), Some(want.clone()), "{me}");
            assert_eq!(Galera::turn(&desired(me), &f, &PlanCx { today: 0, rebuild: false }) == 0, *me == "db2");
        }
    }

    #[test]
    fn a_pristine_cluster_starts_on_its_first_member() {
        let f = fact(
            NodeState::default(),
            &[("db2", Some(NodeState::default())), ("db3", Some(NodeState::default()))],
        );
        assert_eq!(plan("db1", &f), Some(Change::Bootstrap { seqno: None }));
        let f = fact(
            NodeState::default(),
            &[("db1", Some(NodeState::default())), ("db2", Some(NodeState::default()))],
        );
        assert_eq!(plan("db3", &f), Some(Change::Join { unless: None }));
    }

    #[test]
    fn a_member_joins_a_running_cluster_and_one_in_it_has_nothing_to_do() {
        let running = NodeState {
            active: true,
            primary: true,
            state: "Synced".into(),
            ..stopped(12)
        };
        let f = fact(stopped(3), &[("db2", Some(running.clone())), ("db3", None)]);
        assert_eq!(plan("db1", &f), Some(Change::Join { unless: None }));
        let f = fact(running, &[("db1", None), ("db3", None)]);
        assert_eq!(plan("db2", &f), None);
    }

    #[test]
    fn it_never_bootstraps_while_a_member_that_may_be_ahead_cannot_be_asked() {
        let f = fact(stopped(9), &[("db2", Some(stopped(4))), ("db3", None)]);
        match plan("db1", &f) {
            Some(Change::Join { unless: Some(why) }) => {
                assert!(why.contains("db3 cannot be asked"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn members_of_two_clusters_are_refused() {
        let other = NodeState {
            uuid: Some("99aa".into()),
            ..stopped(3)
        };
        let f = fact(stopped(9), &[("db2", Some(other)), ("db3", Some(stopped(1)))]);
        match plan("db1", &f) {
            Some(Change::Refuse(why)) => assert!(why.contains("different clusters"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_equal_position_prefers_the_member_galera_marked_safe() {
        let safe = NodeState {
            safe_to_bootstrap: true,
            ..stopped(5)
        };
        let f = fact(stopped(5), &[("db2", Some(stopped(5))), ("db3", Some(safe))]);
        assert_eq!(plan("db1", &f), Some(Change::Join { unless: None }));
    }

    #[test]
    fn facts_parse_own_and_peer_lines() {
        let out = "A\tinactive\nG\tuuid\t6f1c\nG\tseqno\t-1\nG\tsafe_to_bootstrap\t0\nR\t6f1c:42\n\
                   @peer\tdb2\tA\tactive\n@peer\tdb2\tW\twsrep_on\tON\n\
                   @peer\tdb2\tW\twsrep_cluster_status\tPrimary\n@unreachable\tdb3\n";
        let f = Galera::parse_fact(out);
        assert_eq!(f.node.seqno, Some(42));
        assert_eq!(f.node.uuid.as_deref(), Some("6f1c"));
        assert!(!f.node.active);
        assert!(f.peers["db2"].as_ref().unwrap().primary);
        assert_eq!(f.peers["db3"], None);
    }
}
