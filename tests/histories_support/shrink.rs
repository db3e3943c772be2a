//! Greedy shrinking of a failing history: try dropping whole clients, whole rounds,
//! faults, mid-round dumps, then halves and single operations, keeping each
//! reduction that still fails; repeat until nothing more goes or the attempt budget
//! is spent (each attempt is a full run on the testbed).

use super::history::History;

/// Candidate reductions of `h`, largest first.
fn candidates<O: Clone, F: Clone>(h: &History<O, F>) -> Vec<History<O, F>> {
    let mut out = Vec::new();
    let clients = h.client_count();
    if clients > 1 {
        for c in 0..clients {
            let mut x = h.clone();
            for r in &mut x.rounds {
                if c < r.clients.len() {
                    r.clients.remove(c);
                }
            }
            out.push(x);
        }
    }
    if h.rounds.len() > 1 {
        for i in 0..h.rounds.len() {
            let mut x = h.clone();
            x.rounds.remove(i);
            out.push(x);
        }
    }
    if h.fault_count() > 0 {
        let mut x = h.clone();
        for r in &mut x.rounds {
            r.faults.clear();
        }
        out.push(x);
        for (i, r) in h.rounds.iter().enumerate() {
            for j in 0..r.faults.len() {
                let mut x = h.clone();
                x.rounds[i].faults.remove(j);
                out.push(x);
            }
        }
    }
    if h.rounds.iter().any(|r| r.mid_dump_ms.is_some()) {
        let mut x = h.clone();
        for r in &mut x.rounds {
            r.mid_dump_ms = None;
        }
        out.push(x);
    }
    for (i, r) in h.rounds.iter().enumerate() {
        for (c, ops) in r.clients.iter().enumerate() {
            if ops.len() >= 4 {
                for half in [0..ops.len() / 2, ops.len() / 2..ops.len()] {
                    let mut x = h.clone();
                    x.rounds[i].clients[c].drain(half);
                    out.push(x);
                }
            }
            for k in 0..ops.len() {
                if h.op_count() <= 1 {
                    break;
                }
                let mut x = h.clone();
                x.rounds[i].clients[c].remove(k);
                out.push(x);
            }
        }
    }
    // A round whose clients have nothing left to do only holds faults and dumps.
    out.retain(|x| x.op_count() > 0);
    out
}

/// Shrinks `h` while `fails` holds, with at most `budget` calls of `fails`. Returns
/// the smallest failing history found and the number of attempts made.
pub fn shrink<O: Clone, F: Clone>(
    h: &History<O, F>,
    budget: usize,
    mut fails: impl FnMut(&History<O, F>) -> bool,
) -> (History<O, F>, usize) {
    let mut best = h.clone();
    let mut attempts = 0;
    'outer: loop {
        for cand in candidates(&best) {
            if attempts >= budget {
                break 'outer;
            }
            attempts += 1;
            if fails(&cand) {
                best = cand;
                continue 'outer;
            }
        }
        break;
    }
    (best, attempts)
}
