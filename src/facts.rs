//! Facts: what a server looks like now, gathered for every step in one
//! remote script, one round trip per server per run. Each step's fragment
//! prints its own section; the engine's own facts (pending handlers, the
//! lock) come last.

use crate::resolve::Resolved;
use crate::steps::{FACTS_FLUSH, FACTS_PRELUDE, PENDING_HANDLERS};

/// Starts (or resumes: batched facts come at the end) a step's section of
/// the output; steps print tab-separated records that never begin with it.
const SECTION: &str = "@@foobar-step";
const ENGINE_SECTION: &str = "@@foobar-engine";

/// What the fact script printed, split by step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// One section per step, in step order.
    pub steps: Vec<String>,
    /// Handlers notified by a change whose handler has not run yet.
    pub pending_handlers: Vec<String>,
    /// The rest of the engine's section (the lock, when asked).
    pub engine: String,
}

/// The script that prints the facts of `steps`. Values were validated at
/// load and are quoted by the fragments.
pub fn script(steps: &[Resolved]) -> String {
    let mut s = format!("exec 2>/dev/null\n{FACTS_PRELUDE}");
    for (i, step) in steps.iter().enumerate() {
        s.push_str(&format!("s={i}\necho '{SECTION} {i}'\n"));
        s.push_str(&step.step.fact_script());
    }
    s.push_str(FACTS_FLUSH);
    s.push_str(&format!(
        "echo '{ENGINE_SECTION}'\n[ -f {f} ] && sed 's/^/H\\t/' {f}\ntrue\n",
        f = PENDING_HANDLERS
    ));
    s
}

/// Splits what `script` printed for `count` steps.
pub fn parse(output: &str, count: usize) -> Facts {
    let mut facts = Facts {
        steps: vec![String::new(); count],
        ..Facts::default()
    };
    // Text before the first section (a lock line) belongs to the engine.
    let mut current: Option<usize> = None;
    let mut engine = String::new();
    for line in output.lines() {
        if let Some(i) = line.strip_prefix(SECTION).map(str::trim) {
            current = i.parse().ok().filter(|i| *i < count);
            continue;
        }
        if line == ENGINE_SECTION {
            current = None;
            continue;
        }
        let section = match current {
            Some(i) => &mut facts.steps[i],
            None => &mut engine,
        };
        section.push_str(line);
        section.push('\n');
    }
    for line in engine.lines() {
        match line.strip_prefix("H\t") {
            Some(h) if !h.is_empty() && !facts.pending_handlers.iter().any(|p| p == h) => {
                facts.pending_handlers.push(h.to_string())
            }
            Some(_) => {}
            None => {
                facts.engine.push_str(line);
                facts.engine.push('\n');
            }
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_go_to_their_steps() {
        let out = "LOCKED\tme\tbox 1\n@@foobar-step 0\nP\tnginx\tii \n@@foobar-step 1\n\
                   @@foobar-step 2\nV\tenabled\tactive\n@@foobar-engine\nH\treload nginx\nH\treload nginx\n";
        let f = parse(out, 3);
        assert_eq!(f.steps, vec!["P\tnginx\tii \n", "", "V\tenabled\tactive\n"]);
        assert_eq!(f.pending_handlers, vec!["reload nginx".to_string()]);
        assert_eq!(f.engine, "LOCKED\tme\tbox 1\n");
    }

    #[test]
    fn empty_output_means_a_bare_server() {
        let f = parse("", 2);
        assert_eq!(f.steps, vec![String::new(), String::new()]);
        assert!(f.pending_handlers.is_empty());
    }
}
