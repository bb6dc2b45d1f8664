//! Peer groups (`Kind::peer_group`): servers whose step plans from the
//! facts of the same step on the others (a Galera member decides whether
//! to join or to bootstrap from what every member reports). Each server
//! posts its section once read, waits for the whole group's, and appends
//! the others' to its own; then the group applies one server at a time,
//! in the order their plans give (`Kind::turn`). A server that fails
//! before posting counts as unreachable, and as done.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::watch;

use super::provision::ProvisionJob;
use crate::facts::Facts;
use crate::steps::{PlanCx, PEER_LINE, PEER_UNREACHABLE};

#[derive(Default)]
struct Board {
    /// Group -> the servers in it, as this run's jobs name them.
    members: BTreeMap<&'static str, Vec<String>>,
    /// (group, server) -> its section; None: it could not be read.
    posted: BTreeMap<(&'static str, String), Option<String>>,
    /// Server -> its turn, once planned.
    turns: BTreeMap<String, usize>,
    finished: BTreeSet<String>,
}

pub struct Peers(watch::Sender<Board>);

/// The steps of a job that belong to a peer group: (step index, group).
fn peer_steps(job: &ProvisionJob) -> Vec<(usize, &'static str)> {
    job.steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.step.peer_group()?)))
        .collect()
}

impl Peers {
    pub fn new(jobs: &[ProvisionJob]) -> Self {
        let mut board = Board::default();
        for job in jobs {
            for (_, group) in peer_steps(job) {
                board
                    .members
                    .entry(group)
                    .or_default()
                    .push(job.target.name.clone());
            }
        }
        Self(watch::Sender::new(board))
    }

    /// Posts this server's sections of its peer steps, waits for every
    /// member's, and appends the others' to `facts`. Returns what it
    /// appended, to append again to facts read later in the run.
    pub async fn exchange(&self, job: &ProvisionJob, facts: &mut Facts) -> Vec<(usize, String)> {
        let host = &job.target.name;
        let steps = peer_steps(job);
        if steps.is_empty() {
            return Vec::new();
        }
        self.0.send_modify(|b| {
            for &(i, group) in &steps {
                b.posted
                    .insert((group, host.clone()), Some(facts.steps[i].clone()));
            }
        });
        let mut rx = self.0.subscribe();
        let mut appended = Vec::new();
        for (i, group) in steps {
            let board = rx
                .wait_for(|b| {
                    b.members[group]
                        .iter()
                        .all(|m| b.posted.contains_key(&(group, m.clone())))
                })
                .await
                .expect("the board outlives its servers");
            let mut text = String::new();
            for member in board.members[group].iter().filter(|m| *m != host) {
                match &board.posted[&(group, member.clone())] {
                    Some(section) => {
                        for line in section.lines() {
                            text.push_str(&format!("{PEER_LINE}{member}\t{line}\n"));
                        }
                        // A member that printed nothing is still there.
                        text.push_str(&format!("{PEER_LINE}{member}\n"));
                    }
                    None => text.push_str(&format!("{PEER_UNREACHABLE}{member}\n")),
                }
            }
            appended.push((i, text));
        }
        append(facts, &appended);
        appended
    }

    /// Waits for this server's turn in its peer groups: every member whose
    /// turn comes before its own is done.
    pub async fn turn(&self, job: &ProvisionJob, facts: &Facts, cx: &PlanCx) {
        let host = &job.target.name;
        let steps = peer_steps(job);
        let Some(mine) = steps
            .iter()
            .map(|&(i, _)| job.steps[i].step.turn(&facts.steps[i], cx))
            .max()
        else {
            return;
        };
        self.0.send_modify(|b| {
            b.turns.insert(host.clone(), mine);
        });
        let mut rx = self.0.subscribe();
        for (_, group) in steps {
            let _ = rx
                .wait_for(|b| {
                    b.members[group].iter().filter(|m| *m != host).all(|m| {
                        // Equal turns go by name: never two at once.
                        b.finished.contains(m)
                            || b.turns.get(m).is_some_and(|&t| (t, m) > (mine, host))
                    })
                })
                .await;
        }
    }

    /// This server is done (or failed): members waiting on it go on; a
    /// section it never posted reads as unreachable.
    pub fn finished(&self, job: &ProvisionJob) {
        let host = &job.target.name;
        let steps = peer_steps(job);
        self.0.send_modify(|b| {
            for (_, group) in steps {
                b.posted.entry((group, host.clone())).or_insert(None);
            }
            b.finished.insert(host.clone());
        });
    }
}

/// Appends the peers' lines to facts read (again) later.
pub fn append(facts: &mut Facts, appended: &[(usize, String)]) {
    for (i, text) in appended {
        facts.steps[*i].push_str(text);
    }
}
