//! The reason vocabulary (issue #20): the words a `reason` starts with are a contract
//! for `status` and `log --json` readers, written down in `docs/reasons.md` with the
//! outcome each goes with and the ARCHITECTURE.md rule it comes from.
//!
//! - the doc's table lists exactly the words of `tidemark::decode::reason::Reason`,
//!   in order, and the store's own in-doubt reasons are among them;
//! - every reason printed for the project's captures (`captures/*.pcap` through
//!   `tap`) starts with a listed word and goes with an outcome the doc lists for it;
//! - a CQL scenario answers one write with each ERROR code (and an EXECUTE whose
//!   PREPARE is missing, and a non-RESULT answer), and two MongoDB flows (a failed
//!   `getlasterror`, a transaction left open): each produces its documented word
//!   with its documented outcome;
//! - every other word is cited to the rule test that asserts it (the citation is
//!   checked: the test function exists and names the word), and the words no test
//!   produces are listed in `UNTESTED`, which must shrink when one gets a test.

mod commit_support;
mod common;
mod mongo_flow_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use commit_support::{tap, tap_file, Scenario};
use tidemark::commit::{InDoubtPolicy, TrackerConfig};
use tidemark::decode::reason::Reason;
use tidemark::store::{InDoubtReason, Mutation};
use tidemark_cql::frame::{encode_message, Compression};
use tidemark_cql::message::{
    error_code, ErrorBody, ErrorDetails, Execute, Query, QueryParameters, QueryValues, ResultBody,
};
use tidemark_cql::wire::{Consistency, WireValue};
use tidemark_cql::Message;

/// Words produced by no test today: `unknown` is what an in-doubt write with no
/// reason from its decoder would print, which no decoder does.
const UNTESTED: &[Reason] = &[Reason::Unknown];

/// Words asserted by an existing rule test: (word, test file, test function).
const CITED: &[(Reason, &str, &str)] = &[
    (
        Reason::CountMismatch,
        "tests/inspect_mongo_rules.rs",
        "an_insert_reply_short_of_its_statements_is_in_doubt",
    ),
    (
        Reason::CommandFailed,
        "tests/inspect_mongo_rules.rs",
        "command_failure_rejects_every_statement",
    ),
    (
        Reason::UnknownCommitResult,
        "tests/inspect_mongo_rules.rs",
        "aborted_and_unknown_transactions",
    ),
    (
        Reason::UnreplicatedPolicy,
        "tests/commit_mongo_rules.rs",
        "retryable_writes_are_one_write_and_the_unreplicated_policy_decides",
    ),
    (
        Reason::Unreplicated,
        "tests/commit_mongo_rules.rs",
        "retryable_writes_are_one_write_and_the_unreplicated_policy_decides",
    ),
    (
        Reason::Standalone,
        "tests/commit_mongo_rules.rs",
        "standalone_commits_an_acknowledged_write_at_its_reply",
    ),
    (
        Reason::OneMemberSet,
        "tests/commit_mongo_rules.rs",
        "one_member_set_commits_an_acknowledged_write_at_its_reply",
    ),
    (
        Reason::ImplicitDefaultMajority,
        "tests/commit_mongo_rules.rs",
        "implicit_default_majority_commits_writes_without_w_except_psa_and_before_5_0",
    ),
    (
        Reason::ClusterDefaultMajority,
        "tests/commit_mongo_rules.rs",
        "cluster_default_write_concern_overrides_the_implicit_default",
    ),
    (
        Reason::Unchanged,
        "tests/commit_mongo_rules.rs",
        "a_write_that_changed_nothing_is_committed_as_a_no_op",
    ),
    (
        Reason::NoResponse,
        "tests/commit_cql_rules.rs",
        "retries_merge_into_one_mutation_and_resolve_the_in_doubt_copy",
    ),
    (
        Reason::BatchlogWritten,
        "tests/commit_cql_rules.rs",
        "batch_timeouts_by_write_type_and_the_committed_policy",
    ),
    (
        Reason::Batchlog,
        "tests/commit_cql_rules.rs",
        "batch_timeouts_by_write_type_and_the_committed_policy",
    ),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `docs/reasons.md`'s "Reasons" table: word → the outcomes it goes with, in order.
fn documented() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(root().join("docs/reasons.md")).expect("docs/reasons.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Reasons\n"))
        .expect("a '## Reasons' section");
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let word = cells[1].trim_matches('`').to_string();
            let outcomes = cells[2].split(',').map(|o| o.trim().to_string()).collect();
            (word, outcomes)
        })
        .collect()
}

fn outcomes_of(doc: &[(String, Vec<String>)], r: Reason) -> Vec<String> {
    doc.iter()
        .find(|(w, _)| w == r.as_str())
        .map(|(_, o)| o.clone())
        .unwrap_or_default()
}

#[test]
fn the_doc_lists_exactly_the_words_the_code_prints() {
    let doc: Vec<String> = documented().into_iter().map(|(w, _)| w).collect();
    let code: Vec<String> = Reason::ALL.iter().map(|r| r.as_str().to_string()).collect();
    assert_eq!(doc, code, "docs/reasons.md and Reason::ALL differ");
    for (w, outcomes) in documented() {
        for o in outcomes {
            assert!(
                [
                    "committed",
                    "rejected",
                    "in_doubt",
                    "pending",
                    "rolled_back"
                ]
                .contains(&o.as_str()),
                "{w}: {o:?} is not an outcome"
            );
        }
    }
    // The store's typed in-doubt reasons print words of the vocabulary.
    for r in [
        InDoubtReason::Timeout,
        InDoubtReason::Batchlog,
        InDoubtReason::CasUnknown,
        InDoubtReason::NoResponse,
        InDoubtReason::Unacknowledged,
        InDoubtReason::UnknownCommitResult,
    ] {
        assert!(code.iter().any(|w| w == r.as_str()), "{r:?}");
    }
}

/// Checks one printed reason against the doc; returns the words found in it.
fn check(doc: &[(String, Vec<String>)], m: &Mutation, ctx: &str) -> Vec<Reason> {
    let outcome = m.outcome.kind().as_str();
    let Some(text) = m.reason_text().filter(|t| !t.is_empty()) else {
        assert!(
            outcome == "committed",
            "{ctx}: a {outcome} mutation without a reason"
        );
        return Vec::new();
    };
    let lead = Reason::of(text)
        .unwrap_or_else(|| panic!("{ctx}: {text:?} starts with no word of docs/reasons.md"));
    let by_policy = text.contains(", committed by policy") || text.contains(", rejected by policy");
    let allowed = outcomes_of(doc, lead);
    assert!(
        by_policy || allowed.iter().any(|o| o == outcome),
        "{ctx}: {text:?} is {outcome}; docs/reasons.md gives {lead} only {allowed:?}"
    );
    let mut found = vec![lead];
    if text.contains(Reason::MajorityCommitPoint.as_str()) {
        found.push(Reason::MajorityCommitPoint);
    }
    // A deployment rule's reason keeps the decoder's after `; ` (`one_member_set: …;
    // write_concern_error 64 …`): that word was printed too.
    found.extend(text.split("; ").skip(1).filter_map(Reason::of));
    // The store's own reason (what `status` and `describe` print when there is no
    // note) is a word of the vocabulary too.
    if let Some(stored) = m.outcome.reason() {
        let r = Reason::of(stored)
            .unwrap_or_else(|| panic!("{ctx}: stored reason {stored:?} is no listed word"));
        found.push(r);
    }
    found
}

#[test]
fn every_reason_printed_for_the_captures_is_listed_with_its_outcome() {
    let doc = documented();
    let mut covered: BTreeMap<Reason, String> = BTreeMap::new();
    let mut pcaps: Vec<_> = std::fs::read_dir(root().join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    pcaps.sort();
    assert!(pcaps.len() >= 19, "{} captures", pcaps.len());
    for pcap in &pcaps {
        let name = pcap.file_name().unwrap().to_string_lossy().to_string();
        let out = tap_file(pcap, TrackerConfig::default());
        let undecided = out.undecided.iter().map(|u| &u.mutation);
        for m in out.log.iter().map(|e| &e.mutation).chain(undecided) {
            for r in check(&doc, m, &name) {
                covered.entry(r).or_insert_with(|| name.clone());
            }
        }
    }
    // The captures are the evidence for these words (asserted so a capture that
    // stops producing one is noticed here, not only in the coverage list).
    for r in [
        Reason::AwaitingMajority,
        Reason::WriteError,
        Reason::NotExecuted,
        Reason::WriteConcernError,
        Reason::TransactionCommitted,
        Reason::TransactionAborted,
        Reason::Unacknowledged,
        Reason::Unavailable,
        Reason::NotApplied,
        Reason::Partial,
        Reason::Timeout,
        Reason::RolledBack,
        Reason::OplogEntry,
        Reason::MajorityCommitPoint,
        Reason::ResolvedByLaterCopy,
        Reason::OneMemberSet,
        Reason::Unchanged,
    ] {
        assert!(
            covered.contains_key(&r),
            "no capture produced {r}: {covered:?}"
        );
    }
    let mut cql = cql_error_scenario_words();
    cql.extend(mongo_scenario_words());
    let cited: BTreeSet<Reason> = CITED.iter().map(|(r, _, _)| *r).collect();
    let untested: BTreeSet<Reason> = UNTESTED.iter().copied().collect();
    for r in Reason::ALL {
        let by_test = covered.contains_key(r) || cql.contains(r) || cited.contains(r);
        assert!(
            by_test != untested.contains(r),
            "{r}: produced by a test = {by_test}, listed untested = {}",
            untested.contains(r)
        );
    }
    eprintln!(
        "{} words: {} from the captures, {} from the CQL and MongoDB scenarios, {} cited, {} untested",
        Reason::ALL.len(),
        covered.len(),
        cql.len(),
        cited.len(),
        untested.len()
    );
}

#[test]
fn cited_rule_tests_exist_and_name_their_word() {
    for (r, file, test) in CITED {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let start = text
            .find(&format!("fn {test}("))
            .unwrap_or_else(|| panic!("{file} has no fn {test}"));
        let body = &text[start..];
        let end = body[1..].find("\n#[test]").map_or(body.len(), |e| e + 1);
        assert!(
            body[..end].contains(r.as_str()),
            "{file}::{test} does not mention {r:?}"
        );
    }
}

fn query(stream: i16, k: usize) -> Vec<u8> {
    encode_message(
        4,
        stream,
        Message::Query(Query {
            query: format!("INSERT INTO ks.t (k, v) VALUES ({k}, 'x')").into(),
            params: QueryParameters {
                consistency: Consistency::Quorum,
                ..QueryParameters::default()
            },
        }),
        Compression::None,
    )
}

fn error(stream: i16, code: i32, details: ErrorDetails) -> Vec<u8> {
    encode_message(
        4,
        stream,
        Message::Error(ErrorBody {
            code,
            message: "refused".into(),
            details,
        }),
        Compression::None,
    )
}

/// One write per CQL answer the rules know, through `tap`: each must be logged (or
/// left undecided) with its documented word and an outcome the doc gives it.
/// Returns the words produced.
fn cql_error_scenario_words() -> BTreeSet<Reason> {
    use ErrorDetails as D;
    let q = Consistency::Quorum;
    let cases: Vec<(Vec<u8>, Reason)> = vec![
        (
            error(0, error_code::OVERLOADED, D::None),
            Reason::Overloaded,
        ),
        (
            error(0, error_code::IS_BOOTSTRAPPING, D::None),
            Reason::IsBootstrapping,
        ),
        (
            error(
                0,
                error_code::UNPREPARED,
                D::Unprepared {
                    id: Bytes::from_static(b"\x01"),
                },
            ),
            Reason::Unprepared,
        ),
        (
            error(0, error_code::SYNTAX_ERROR, D::None),
            Reason::SyntaxError,
        ),
        (error(0, error_code::INVALID, D::None), Reason::Invalid),
        (
            error(0, error_code::UNAUTHORIZED, D::None),
            Reason::Unauthorized,
        ),
        (
            error(0, error_code::CONFIG_ERROR, D::None),
            Reason::ConfigError,
        ),
        (
            error(
                0,
                error_code::ALREADY_EXISTS,
                D::AlreadyExists {
                    keyspace: "ks".into(),
                    table: "t".into(),
                },
            ),
            Reason::AlreadyExists,
        ),
        (
            error(0, error_code::PROTOCOL_ERROR, D::None),
            Reason::ProtocolError,
        ),
        (
            error(0, error_code::BAD_CREDENTIALS, D::None),
            Reason::BadCredentials,
        ),
        (
            error(
                0,
                error_code::FUNCTION_FAILURE,
                D::FunctionFailure {
                    keyspace: "ks".into(),
                    function: "f".into(),
                    arg_types: vec![],
                },
            ),
            Reason::FunctionFailure,
        ),
        (
            error(0, error_code::CDC_WRITE_FAILURE, D::None),
            Reason::CdcWriteFailure,
        ),
        (
            error(0, error_code::SERVER_ERROR, D::None),
            Reason::ServerError,
        ),
        (
            error(0, error_code::TRUNCATE_ERROR, D::None),
            Reason::TruncateError,
        ),
        (error(0, 0x0042, D::None), Reason::ErrorCode),
        (
            error(
                0,
                error_code::CAS_WRITE_UNKNOWN,
                D::CasWriteUnknown {
                    consistency: q,
                    received: 0,
                    block_for: 2,
                },
            ),
            Reason::CasUnknown,
        ),
        (
            error(
                0,
                error_code::READ_TIMEOUT,
                D::ReadTimeout {
                    consistency: q,
                    received: 0,
                    block_for: 2,
                    data_present: false,
                },
            ),
            Reason::Timeout,
        ),
        (
            encode_message(4, 0, Message::Ready, Compression::None),
            Reason::UnexpectedResponse,
        ),
    ];
    let doc = documented();
    let mut s = Scenario::new();
    for (i, (answer, _)) in cases.iter().enumerate() {
        // One flow per case: each answer goes to stream 0 of its own connection.
        let f = s.flow(&format!("10.9.0.1:{}", 41000 + i), "10.1.0.1:9042", 1);
        s.send(f, 10 + i as u64, &query(0, i));
        s.answer(f, 11 + i as u64, answer);
        s.close(f, 100);
    }
    // An EXECUTE whose PREPARE was never captured, answered Void.
    let f = s.flow("10.9.0.1:42000", "10.1.0.1:9042", 1);
    let execute = Message::Execute(Execute {
        id: Bytes::from_static(b"\xca\xfe"),
        result_metadata_id: None,
        params: QueryParameters {
            values: QueryValues::Positional(vec![WireValue::Bytes(Bytes::from_static(
                b"\0\0\0\x07",
            ))]),
            ..QueryParameters::default()
        },
    });
    s.send(f, 50, &encode_message(4, 0, execute, Compression::None));
    s.answer(
        f,
        51,
        &encode_message(4, 0, Message::Result(ResultBody::Void), Compression::None),
    );
    s.close(f, 100);

    let out = tap(
        &s,
        TrackerConfig {
            resolve_after_ns: 1_000_000,
            in_doubt_policy: InDoubtPolicy::Keep,
            ..TrackerConfig::default()
        },
    );
    // The table's schema is unknown here, so writes are told apart by their flow
    // (flows are numbered as their handshakes appear: case i is flow i).
    let mut produced: BTreeMap<Reason, Vec<u64>> = BTreeMap::new();
    let undecided = out.undecided.iter().map(|u| &u.mutation);
    for m in out.log.iter().map(|e| &e.mutation).chain(undecided) {
        let ctx = format!("CQL scenario, flow {}", m.source.flow);
        for r in check(&doc, m, &ctx) {
            produced.entry(r).or_default().push(m.source.flow);
        }
    }
    for (i, (_, want)) in cases.iter().enumerate() {
        assert!(
            produced
                .get(want)
                .is_some_and(|flows| flows.contains(&(i as u64))),
            "the write on flow {i} should carry {want}: {produced:?}"
        );
    }
    let execute_flow = cases.len() as u64;
    for want in [Reason::PreparedNotSeen, Reason::UnresolvedPrepared] {
        assert!(
            produced
                .get(&want)
                .is_some_and(|flows| flows.contains(&execute_flow)),
            "no {want} on flow {execute_flow}: {produced:?}"
        );
    }
    produced.into_keys().collect()
}

/// The MongoDB words no capture or rule test shows, through the flow decoder: a
/// legacy write whose `getlasterror` itself fails, and a transaction whose flow ends
/// with neither commit nor abort.
fn mongo_scenario_words() -> BTreeSet<Reason> {
    use mongo_flow_support::{msg, Flow};
    use tidemark::decode::mongo::tidemark_mongo::bson::{self, rawdoc};
    use tidemark::decode::mongo::tidemark_mongo::{
        Body, Doc, DocSeq, Message as MongoMessage, OpInsert, OpQuery, OpReply,
    };
    let doc = documented();
    let mut produced = BTreeSet::new();
    let mut expect = |f: &Flow, want: Reason, text: &str| {
        let w = f.writes();
        let last = w.last().expect("a write line");
        let reason = last.reason.as_deref().unwrap_or("");
        assert_eq!(reason, text);
        assert_eq!(Reason::of(reason), Some(want), "{reason}");
        assert!(
            outcomes_of(&doc, want)
                .iter()
                .any(|o| o == last.outcome.as_str()),
            "{reason}: {}",
            last.outcome
        );
        produced.insert(want);
    };

    let mut f = Flow::new();
    let ins = OpInsert {
        flags: 0,
        full_collection_name: "d.c".into(),
        documents: DocSeq::from_docs([rawdoc! {"_id": 1}.as_ref()]),
    };
    f.send(&MongoMessage::new(1, 0, Body::Insert(ins)));
    let gle = OpQuery {
        flags: 0,
        full_collection_name: "d.$cmd".into(),
        number_to_skip: 0,
        number_to_return: -1,
        query: Doc::from(rawdoc! {"getlasterror": 1, "w": 1}),
        return_fields_selector: None,
    };
    f.send(&MongoMessage::new(2, 0, Body::Query(gle)));
    let failed = rawdoc! {"ok": 0.0, "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary"};
    let reply = OpReply {
        response_flags: 0,
        cursor_id: 0,
        starting_from: 0,
        documents: DocSeq::from_docs([failed.as_ref()]),
    };
    f.answer(&MongoMessage::new(100, 2, Body::Reply(reply)));
    expect(
        &f,
        Reason::GetlasterrorFailed,
        "getlasterror_failed: command_failed 10107 NotWritablePrimary: not primary",
    );

    let mut f = Flow::new();
    let lsid = bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: vec![7; 16],
    };
    let stmt = rawdoc! {
        "insert": "c", "$db": "d", "lsid": {"id": lsid}, "txnNumber": 1_i64,
        "autocommit": false, "startTransaction": true,
    };
    f.send(&msg(
        1,
        0,
        stmt,
        vec![("documents", vec![rawdoc! {"_id": 1}])],
    ));
    f.answer(&msg(100, 1, rawdoc! {"n": 1, "ok": 1.0}, vec![]));
    f.close();
    expect(
        &f,
        Reason::TransactionUndecided,
        "transaction_undecided: no commitTransaction or abortTransaction seen",
    );
    produced
}
