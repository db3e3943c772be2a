//! Property test: any sequence of appends and reopens, then any query, gives what an
//! in-memory model of the log gives.

mod store_support;

use proptest::prelude::*;
use store_support::{cql, mongo, reopen, store_dir};
use tidemark::store::{InDoubtReason, Mutation, Outcome, OutcomeKind, Query, Store, StoreOptions};

const NAMESPACES: [&str; 3] = ["ks.t", "ks.tt", "db.c"];

fn key(i: usize) -> String {
    match i {
        // Prefix of the next one, and a key too long for a literal LMDB key.
        0 => r#"{"id":"a"}"#.to_string(),
        1 => r#"{"id":"ab"}"#.to_string(),
        2 => format!(r#"{{"id":"{}"}}"#, "z".repeat(600)),
        n => format!(r#"{{"id":{n}}}"#),
    }
}

fn outcome(i: usize) -> Outcome {
    match i {
        0 => Outcome::Committed,
        1 => Outcome::Rejected,
        2 => Outcome::InDoubt {
            reason: InDoubtReason::Timeout,
        },
        3 => Outcome::RolledBack,
        _ => Outcome::Pending,
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// (namespace, key, commit time step, outcome) per mutation.
    Append(Vec<(usize, usize, u64, usize)>),
    Reopen,
}

#[derive(Debug, Clone)]
struct Q {
    ns: Option<usize>,
    key: Option<usize>,
    outcome: Option<usize>,
    time: Option<(u64, u64)>,
    seqs: Option<(u64, u64)>,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((0..3usize, 0..5usize, 0..3u64, 0..5usize), 0..8).prop_map(Op::Append),
        1 => Just(Op::Reopen),
    ]
}

fn query() -> impl Strategy<Value = Q> {
    (
        prop::option::of(0..3usize),
        prop::option::of(0..5usize),
        prop::option::of(0..5usize),
        prop::option::of((0..40u64, 0..40u64)),
        prop::option::of((0..40u64, 0..40u64)),
    )
        .prop_map(|(ns, key, outcome, time, seqs)| Q {
            ns,
            key,
            outcome,
            time,
            seqs,
        })
}

fn to_query(q: &Q) -> Query {
    let mut query = Query::all();
    if let Some(ns) = q.ns {
        query = match q.key {
            Some(k) => query.key(NAMESPACES[ns], key(k)),
            None => query.namespace(NAMESPACES[ns]),
        };
    }
    if let Some(o) = q.outcome {
        query = query.outcome(outcome(o).kind());
    }
    if let Some((a, b)) = q.time {
        query = query.commit_times(a..=b);
    }
    if let Some((a, b)) = q.seqs {
        query = query.seqs(a..b);
    }
    query
}

fn model_answer(model: &[Mutation], q: &Q) -> Vec<u64> {
    let kind: Option<OutcomeKind> = q.outcome.map(|o| outcome(o).kind());
    model
        .iter()
        .enumerate()
        .map(|(i, m)| (i as u64 + 1, m))
        .filter(|(seq, m)| {
            q.ns.is_none_or(|ns| m.namespace == NAMESPACES[ns])
                && (q.ns.is_none() || q.key.is_none_or(|k| m.key == key(k)))
                && kind.is_none_or(|k| m.outcome.kind() == k)
                && q.time.is_none_or(|(a, b)| (a..=b).contains(&m.commit_time))
                && q.seqs.is_none_or(|(a, b)| (a..b).contains(seq))
        })
        .map(|(seq, _)| seq)
        .collect()
}

proptest! {
    // 512 cases take ~4 s in a debug build (48 took 0.4 s and left most
    // append/reopen/query interleavings untried).
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..12), queries in prop::collection::vec(query(), 1..24)) {
        let (_tmp, dir) = store_dir();
        let mut store = Store::create(&dir, &StoreOptions::for_tests()).unwrap();
        let mut model: Vec<Mutation> = Vec::new();
        let mut time = 1u64;
        for op in &ops {
            match op {
                Op::Append(items) => {
                    let batch: Vec<Mutation> = items
                        .iter()
                        .map(|&(ns, k, step, o)| {
                            time += step;
                            let mut m = if ns == 2 {
                                mongo(NAMESPACES[ns], k as u64, time, 64)
                            } else {
                                cql(NAMESPACES[ns], &key(k), time, 2)
                            };
                            m.key = key(k);
                            m.outcome = outcome(o);
                            m
                        })
                        .collect();
                    let range = store.append_batch(&batch).unwrap();
                    prop_assert_eq!(range.start, model.len() as u64 + 1);
                    prop_assert_eq!(range.end, (model.len() + batch.len()) as u64 + 1);
                    model.extend(batch);
                }
                Op::Reopen => {
                    drop(store);
                    store = reopen(&dir);
                }
            }
        }
        let reader = store.reader().unwrap();
        prop_assert_eq!(reader.len().unwrap(), model.len() as u64);
        for q in &queries {
            let got: Vec<_> = reader.query(&to_query(q)).unwrap().collect::<Result<_, _>>().unwrap();
            let got_seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
            prop_assert_eq!(&got_seqs, &model_answer(&model, q), "query {:?}", q);
            for e in &got {
                prop_assert_eq!(&e.mutation, &model[e.seq as usize - 1]);
            }
        }
    }
}
