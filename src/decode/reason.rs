//! The reason vocabulary: the words a write's `reason` starts with, in one place.
//!
//! `inspect --json`, `log --json` and `status` print a reason next to every outcome
//! that is not a plain `committed`. Readers (people, scripts, `version create`) key on
//! its first words, so those are a contract: each [`Reason`] is one of them, spelled
//! exactly as printed by [`Reason::as_str`], and `docs/reasons.md` lists them with the
//! outcome and the ARCHITECTURE.md rule each comes from (tests/reason_vocabulary.rs
//! keeps the two equal). What follows the words (the server's error text, a commit
//! point, a flow number) is for people and may change; the words may only be added to.
//!
//! Decoders give a write line a [`WriteReason`]: a [`Reason`] plus what follows it,
//! so the words are a value from where the outcome is decided on (the commit tracker
//! maps them, never parses them). Elsewhere (the tracker's notes) producers write
//! `Reason::X.as_str()` (or `{}` with `Display`), never a literal, so a word cannot be
//! printed that is not here.

use std::fmt;

/// The leading words of a `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    // CQL responses (src/decode/cql/outcome.rs).
    NotApplied,
    BatchlogWritten,
    Batchlog,
    Timeout,
    CasUnknown,
    Partial,
    Unavailable,
    Overloaded,
    IsBootstrapping,
    Unprepared,
    SyntaxError,
    Invalid,
    Unauthorized,
    ConfigError,
    AlreadyExists,
    ProtocolError,
    BadCredentials,
    FunctionFailure,
    CdcWriteFailure,
    ServerError,
    TruncateError,
    ErrorCode,
    UnexpectedResponse,
    /// CQL and MongoDB: no response was seen.
    NoResponse,
    /// CQL: an EXECUTE whose PREPARE was not captured.
    PreparedNotSeen,
    // MongoDB replies (src/decode/mongo/outcome.rs, flow.rs, txn.rs).
    AwaitingMajority,
    WriteConcernError,
    WriteError,
    NotExecuted,
    CommandFailed,
    GetlasterrorFailed,
    /// MongoDB: an insert's reply counts fewer documents (`n`) than statements it
    /// acknowledged without a `writeError`: which of them landed is unknown.
    CountMismatch,
    Unacknowledged,
    UnknownCommitResult,
    TransactionCommitted,
    TransactionAborted,
    TransactionUndecided,
    // The commit tracker (src/commit/tracker.rs, tracker/mongo.rs, convert.rs).
    UnreplicatedPolicy,
    Unreplicated,
    RolledBack,
    MajorityCommitPoint,
    OplogEntry,
    /// MongoDB deployment rules (src/commit/mongo_rules.rs): the rule that made an
    /// acknowledged write committed at its reply.
    Standalone,
    OneMemberSet,
    ImplicitDefaultMajority,
    ClusterDefaultMajority,
    /// MongoDB: an acknowledged write whose reply says it changed no document.
    Unchanged,
    /// Printed after the earlier copy's outcome (`in_doubt(timeout) resolved by a
    /// later copy on flow 3 (…)`): the one reason that does not lead its text.
    ResolvedByLaterCopy,
    UnresolvedPrepared,
    /// A decoder gave an in-doubt write no reason (never expected; kept visible).
    Unknown,
}

impl Reason {
    /// Every reason, in the order of `docs/reasons.md`.
    pub const ALL: &'static [Reason] = &[
        Reason::NotApplied,
        Reason::BatchlogWritten,
        Reason::Batchlog,
        Reason::Timeout,
        Reason::CasUnknown,
        Reason::Partial,
        Reason::Unavailable,
        Reason::Overloaded,
        Reason::IsBootstrapping,
        Reason::Unprepared,
        Reason::SyntaxError,
        Reason::Invalid,
        Reason::Unauthorized,
        Reason::ConfigError,
        Reason::AlreadyExists,
        Reason::ProtocolError,
        Reason::BadCredentials,
        Reason::FunctionFailure,
        Reason::CdcWriteFailure,
        Reason::ServerError,
        Reason::TruncateError,
        Reason::ErrorCode,
        Reason::UnexpectedResponse,
        Reason::NoResponse,
        Reason::PreparedNotSeen,
        Reason::AwaitingMajority,
        Reason::WriteConcernError,
        Reason::WriteError,
        Reason::NotExecuted,
        Reason::CommandFailed,
        Reason::GetlasterrorFailed,
        Reason::CountMismatch,
        Reason::Unacknowledged,
        Reason::UnknownCommitResult,
        Reason::TransactionCommitted,
        Reason::TransactionAborted,
        Reason::TransactionUndecided,
        Reason::UnreplicatedPolicy,
        Reason::Unreplicated,
        Reason::RolledBack,
        Reason::MajorityCommitPoint,
        Reason::OplogEntry,
        Reason::Standalone,
        Reason::OneMemberSet,
        Reason::ImplicitDefaultMajority,
        Reason::ClusterDefaultMajority,
        Reason::Unchanged,
        Reason::ResolvedByLaterCopy,
        Reason::UnresolvedPrepared,
        Reason::Unknown,
    ];

    /// The words exactly as printed at the start of a reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::NotApplied => "not_applied",
            Reason::BatchlogWritten => "batchlog_written",
            Reason::Batchlog => "batchlog",
            Reason::Timeout => "timeout",
            Reason::CasUnknown => "cas_unknown",
            Reason::Partial => "partial",
            Reason::Unavailable => "unavailable",
            Reason::Overloaded => "overloaded",
            Reason::IsBootstrapping => "is_bootstrapping",
            Reason::Unprepared => "unprepared",
            Reason::SyntaxError => "syntax_error",
            Reason::Invalid => "invalid",
            Reason::Unauthorized => "unauthorized",
            Reason::ConfigError => "config_error",
            Reason::AlreadyExists => "already_exists",
            Reason::ProtocolError => "protocol_error",
            Reason::BadCredentials => "bad_credentials",
            Reason::FunctionFailure => "function_failure",
            Reason::CdcWriteFailure => "cdc_write_failure",
            Reason::ServerError => "server_error",
            Reason::TruncateError => "truncate_error",
            Reason::ErrorCode => "error",
            Reason::UnexpectedResponse => "unexpected_response",
            Reason::NoResponse => "no_response",
            Reason::PreparedNotSeen => "prepared statement",
            Reason::AwaitingMajority => "awaiting_majority",
            Reason::WriteConcernError => "write_concern_error",
            Reason::WriteError => "write_error",
            Reason::NotExecuted => "not_executed",
            Reason::CommandFailed => "command_failed",
            Reason::GetlasterrorFailed => "getlasterror_failed",
            Reason::CountMismatch => "count_mismatch",
            Reason::Unacknowledged => "unacknowledged",
            Reason::UnknownCommitResult => "unknown_commit_result",
            Reason::TransactionCommitted => "transaction_committed",
            Reason::TransactionAborted => "transaction_aborted",
            Reason::TransactionUndecided => "transaction_undecided",
            Reason::UnreplicatedPolicy => "unreplicated_policy",
            Reason::Unreplicated => "unreplicated",
            Reason::RolledBack => "rolled_back",
            Reason::MajorityCommitPoint => "majority commit point",
            Reason::OplogEntry => "oplog entry",
            Reason::Standalone => "standalone",
            Reason::OneMemberSet => "one_member_set",
            Reason::ImplicitDefaultMajority => "implicit_default_majority",
            Reason::ClusterDefaultMajority => "cluster_default_majority",
            Reason::Unchanged => "unchanged",
            Reason::ResolvedByLaterCopy => "resolved by a later copy",
            Reason::UnresolvedPrepared => "unresolved_prepared",
            Reason::Unknown => "unknown",
        }
    }

    /// The reason a printed text starts with: the longest of the words that is
    /// followed by the end, a space, `:` or `;` (so `batchlog` is not read from
    /// `batchlog_written`), or [`Reason::ResolvedByLaterCopy`] after an outcome
    /// word. `None` for a text outside the vocabulary.
    pub fn of(text: &str) -> Option<Reason> {
        let later = Reason::ResolvedByLaterCopy.as_str();
        let after_outcome = text.split_once(' ').is_some_and(|(first, rest)| {
            first
                .split('(')
                .next()
                .is_some_and(|o| OUTCOMES.contains(&o))
                && rest.starts_with(later)
        });
        if after_outcome {
            return Some(Reason::ResolvedByLaterCopy);
        }
        Reason::ALL
            .iter()
            .copied()
            .filter(|r| {
                text.strip_prefix(r.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ':', ';', '(']))
            })
            .max_by_key(|r| r.as_str().len())
    }
}

/// A write line's `reason` as a decoder gives it: the leading words as a
/// [`Reason`], which the commit tracker acts on (it never reads the words back out
/// of text), and the whole text as printed (the words, then what follows for
/// people: the server's error text, counts, a flow number).
///
/// Reads as the printed text (`Deref<Target = str>`, `Display`, serialized as a
/// string), so the JSON lines and everything comparing with text are unchanged.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WriteReason {
    word: Reason,
    /// Starts with `word`'s words. Borrowed when it is nothing but them.
    text: std::borrow::Cow<'static, str>,
}

impl WriteReason {
    /// A reason that is its words alone.
    pub fn new(word: Reason) -> Self {
        WriteReason {
            word,
            text: std::borrow::Cow::Borrowed(word.as_str()),
        }
    }

    /// The words followed by `rest` as printed (`rest` brings its own separator:
    /// `": ..."`, `" 2/3"`, `" (...)"`).
    pub fn with(word: Reason, rest: impl fmt::Display) -> Self {
        WriteReason {
            word,
            text: std::borrow::Cow::Owned(format!("{word}{rest}")),
        }
    }

    /// A whole text the caller built for `word`: its words first (or, for
    /// [`Reason::ResolvedByLaterCopy`], after an earlier outcome). `word` is named
    /// by the caller, never read back; debug builds check the two agree.
    pub fn spelled(word: Reason, text: String) -> Self {
        debug_assert_eq!(Reason::of(&text), Some(word), "{text}");
        WriteReason {
            word,
            text: std::borrow::Cow::Owned(text),
        }
    }

    /// A printed reason read back, from a line a store kept as text (the one place
    /// text comes back in): its words by [`Reason::of`], [`Reason::Unknown`] for a
    /// text outside the vocabulary (kept as it was).
    pub fn read(text: &str) -> Self {
        WriteReason {
            word: Reason::of(text).unwrap_or(Reason::Unknown),
            text: std::borrow::Cow::Owned(text.to_owned()),
        }
    }

    /// The leading words.
    pub fn word(&self) -> Reason {
        self.word
    }

    /// The text as printed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Adds to the printed text; the words stay what they were.
    pub fn push_str(&mut self, more: &str) {
        self.text.to_mut().push_str(more);
    }
}

impl From<Reason> for WriteReason {
    fn from(word: Reason) -> Self {
        WriteReason::new(word)
    }
}

impl std::ops::Deref for WriteReason {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for WriteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// As the text prints, so test failures read as before.
impl fmt::Debug for WriteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl PartialEq<str> for WriteReason {
    fn eq(&self, other: &str) -> bool {
        *self.text == *other
    }
}

impl PartialEq<&str> for WriteReason {
    fn eq(&self, other: &&str) -> bool {
        *self.text == **other
    }
}

impl serde::Serialize for WriteReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// The outcome words a `resolved by a later copy` text starts with.
const OUTCOMES: &[&str] = &[
    "in_doubt",
    "pending",
    "rejected",
    "rolled_back",
    "committed",
];

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_itself() {
        for r in Reason::ALL {
            if *r == Reason::ResolvedByLaterCopy {
                continue;
            }
            assert_eq!(Reason::of(r.as_str()), Some(*r));
            assert_eq!(Reason::of(&format!("{r}: more")), Some(*r));
        }
        assert_eq!(
            Reason::of("batchlog_written"),
            Some(Reason::BatchlogWritten)
        );
        assert_eq!(Reason::of("partial 2/3"), Some(Reason::Partial));
        assert_eq!(Reason::of("error 0x1234"), Some(Reason::ErrorCode));
        assert_eq!(Reason::of("timeouts"), None);
        assert_eq!(Reason::of("resolved"), None);
        assert_eq!(
            Reason::of("in_doubt(no_response) resolved by a later copy on flow 2 (x)"),
            Some(Reason::ResolvedByLaterCopy)
        );
        assert_eq!(
            Reason::of("pending resolved by a later copy on flow 2 (x)"),
            Some(Reason::ResolvedByLaterCopy)
        );
    }

    #[test]
    fn a_write_reason_prints_its_text_and_keeps_its_words() {
        let r = WriteReason::with(Reason::Timeout, ": WriteTimeout SIMPLE 0/2");
        assert_eq!(r.word(), Reason::Timeout);
        assert_eq!(r, "timeout: WriteTimeout SIMPLE 0/2");
        assert_eq!(
            serde_json::to_string(&Some(&r)).unwrap(),
            "\"timeout: WriteTimeout SIMPLE 0/2\""
        );
        assert_eq!(format!("{r:?}"), "\"timeout: WriteTimeout SIMPLE 0/2\"");

        let mut bare = WriteReason::new(Reason::AwaitingMajority);
        assert_eq!(bare.as_str(), "awaiting_majority");
        bare.push_str(" (getlasterror)");
        assert_eq!(bare.word(), Reason::AwaitingMajority);
        assert_eq!(&*bare, "awaiting_majority (getlasterror)");

        // Text read back from a store keeps its words when it has them, and is
        // kept as it was (words `unknown`) when it does not.
        assert_eq!(
            WriteReason::read("no_response: gap").word(),
            Reason::NoResponse
        );
        let odd = WriteReason::read("not a reason");
        assert_eq!(
            (odd.word(), odd.as_str()),
            (Reason::Unknown, "not a reason")
        );
    }
}
