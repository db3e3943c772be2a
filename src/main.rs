//! Command-line entry point: argument parsing only. Every command is a library call.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// mimalloc, not glibc's malloc: decode and the tracker make and drop many small
/// objects per write, and glibc consolidating its fast bins before every larger
/// request was a third of decode time (see Cargo.toml for the numbers, and why
/// without transparent huge pages).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tidemark",
    version,
    about = "Point-in-time backup and restore for Cassandra and MongoDB by watching the wire"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode captures (or a live interface) and report flows, messages and writes.
    Inspect(InspectArgs),
    /// Decide every write's outcome from captures (or a live interface) and append
    /// the committed mutations to a store.
    Tap(TapArgs),
    /// Print a store's mutations.
    Log(LogArgs),
    /// Print a store's tidemark, outcome counts, undecided writes, gaps and policy.
    Status(StatusArgs),
    /// Cut, list, show and compare point-in-time versions of a store.
    #[command(subcommand)]
    Version(VersionCommand),
    /// Write a version's tables and collections to files (one per namespace).
    Export(ExportArgs),
    /// Take a full copy of a cluster into a store, or list and show the copies.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Write a version back into a cluster of any topology through the real drivers.
    Restore(RestoreArgs),
    /// Read a cluster back and compare it with a version (exit 1 when they differ).
    Verify(VerifyArgs),
    /// The story end to end on clusters it starts on loopback: workload, tap,
    /// snapshot, a node added, a failover, a fat-finger, a version just before it,
    /// restore and verify. Needs live capture on lo (root or CAP_NET_RAW).
    Demo(DemoArgs),
    /// The sidecar: forward every byte to a node unchanged, and decide and store the
    /// writes in what was forwarded, as tap does.
    Proxy(ProxyArgs),
    /// The remote repository on object storage: push a store's log as sealed
    /// segments, list the sources, verify every object.
    #[command(subcommand)]
    Repo(RepoCommand),
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Seal what the store's log holds beyond the repository into segments and
    /// upload them (each confirmed before the next; a retry never makes a copy).
    Push(RepoPushArgs),
    /// List the repository's sources: segments, seqs, commit times, tidemark.
    Ls(RepoUrlArgs),
    /// Merge every source's segments into one log in a local working store, up to
    /// the cluster's tidemark (what `version create --repo` does first).
    Pull(RepoPullArgs),
    /// Re-read every object and check it against its manifest (exit 1 on a problem).
    Verify(RepoUrlArgs),
    /// Drop the log and snapshots no version still wanted can need.
    Prune(RepoPruneArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("keep").required(true).args(["keep_within", "keep_versions"])))]
struct RepoPruneArgs {
    #[command(flatten)]
    at: RepoUrlArgs,
    /// Keep every version within this long before now: 30d, 12h, 45m, 90s.
    #[arg(long = "keep-within", value_name = "D")]
    keep_within: Option<String>,
    /// Keep the N newest snapshots of each protocol usable.
    #[arg(long = "keep-versions", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    keep_versions: Option<u64>,
    /// Say what would go, delete nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
}

/// `30d`, `12h`, `45m`, `90s` (or plain seconds) in ns.
fn duration_ns(flag: &str, text: &str) -> anyhow::Result<u64> {
    let (num, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let secs_per = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => anyhow::bail!("{flag} {text:?}: a number with s, m, h, d or w"),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| anyhow::anyhow!("{flag} {text:?}: a number with s, m, h, d or w"))?;
    Ok((n * secs_per * 1e9).min(u64::MAX as f64) as u64)
}

#[derive(Args)]
struct RepoUrlArgs {
    /// s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or
    /// file:///path; credentials come from the environment (AWS_ACCESS_KEY_ID, …).
    #[arg(long, value_name = "URL")]
    repo: String,
    /// Encrypt (push) or decrypt (pull, verify) objects with this key: 32 bytes or
    /// 64 hex digits in a file (AES-256-GCM, client side).
    #[arg(long = "encrypt-key-file", value_name = "F")]
    encrypt_key_file: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// The repository key a `--encrypt-key-file` names.
fn repo_key(
    file: &Option<PathBuf>,
) -> anyhow::Result<Option<std::sync::Arc<tidemark::repo::crypt::Key>>> {
    file.as_deref()
        .map(|f| tidemark::repo::crypt::Key::from_file(f).map(std::sync::Arc::new))
        .transpose()
}

/// `--repo` on a run (tap, proxy): ship the store's log as it goes.
#[derive(Args)]
struct ShipArgs {
    /// Push sealed segments to this repository as the run goes (and once more at
    /// its end): s3://bucket/prefix, gs://…, az://…, file:///path.
    #[arg(long, value_name = "URL")]
    repo: Option<String>,
    /// Seconds between pushes.
    #[arg(
        long = "push-every",
        value_name = "S",
        default_value_t = 30.0,
        requires = "repo"
    )]
    push_every: f64,
    /// Push as this source id (default: the store's own).
    #[arg(long = "source-id", value_name = "ID", requires = "repo")]
    source_id: Option<String>,
    /// Upload at most this many MB/s.
    #[arg(long = "push-rate-mb", value_name = "MB", requires = "repo")]
    push_rate_mb: Option<f64>,
    /// Encrypt what is pushed with this key (32 bytes or 64 hex digits in a file).
    #[arg(long = "encrypt-key-file", value_name = "F", requires = "repo")]
    encrypt_key_file: Option<PathBuf>,
    /// Keep this much of the log locally (30d, 12h, 45m, 90s, or `all`): after each
    /// push, segments the repository confirms whose last commit is older are
    /// dropped from the store (versions are then cut with `version create --repo`).
    /// Default: 24h for a sidecar (`proxy`) and a live `tap`, `all` for a tap of
    /// capture files (their commit times are the capture's, often long past). The
    /// store's file does not shrink; LMDB reuses the freed pages.
    #[arg(long = "keep-local", value_name = "D", requires = "repo")]
    keep_local: Option<String>,
}

/// `--keep-local` of a live run (sidecar, live tap) when not given.
const DEFAULT_KEEP_LOCAL_LIVE: &str = "24h";

impl ShipArgs {
    /// The companion of a run; `live` picks the `--keep-local` default.
    fn companion(&self, live: bool) -> anyhow::Result<Option<tidemark::tap::Companion>> {
        let Some(repo) = &self.repo else {
            return Ok(None);
        };
        if !(self.push_every.is_finite() && self.push_every > 0.0 && self.push_every <= 86_400.0) {
            anyhow::bail!(
                "--push-every {}: seconds, above 0 and at most a day",
                self.push_every
            );
        }
        if let Some(r) = self.push_rate_mb {
            if !(r.is_finite() && r > 0.0) {
                anyhow::bail!("--push-rate-mb {r}: give a positive number of MB/s");
            }
        }
        tidemark::repo::ship::companion(tidemark::repo::ship::ShipOptions {
            repo: repo.clone(),
            key: repo_key(&self.encrypt_key_file)?,
            every: std::time::Duration::from_secs_f64(self.push_every),
            source: self.source_id.clone(),
            rate_mb: self.push_rate_mb,
            segment_mutations: tidemark::repo::push::DEFAULT_SEGMENT_MUTATIONS,
            segment_bytes: tidemark::repo::push::DEFAULT_SEGMENT_BYTES,
            keep_local: match self.keep_local.as_deref().unwrap_or(if live {
                DEFAULT_KEEP_LOCAL_LIVE
            } else {
                "all"
            }) {
                "all" => None,
                d => Some(duration_ns("--keep-local", d)?),
            },
        })
        .map(Some)
    }
}

#[derive(Args)]
struct RepoPullArgs {
    /// The working store (default: a cache directory of the repository).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(flatten)]
    at: RepoUrlArgs,
}

/// The store a command works on: `--store`, or with `--repo` alone the repository's
/// cache directory.
fn working_store(store: Option<PathBuf>, repo: Option<&str>) -> anyhow::Result<PathBuf> {
    match (store, repo) {
        (Some(dir), _) => Ok(dir),
        (None, Some(url)) => tidemark::repo::default_working_dir(url),
        (None, None) => anyhow::bail!("give --store DIR or --repo URL"),
    }
}

#[derive(Args)]
struct RepoPushArgs {
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    #[command(flatten)]
    at: RepoUrlArgs,
    /// Push as this source id (default: the store's own, made once and kept).
    #[arg(long = "source-id", value_name = "ID")]
    source_id: Option<String>,
    /// Seal a segment at this many mutations.
    #[arg(long = "segment-mutations", value_name = "N", default_value_t = tidemark::repo::push::DEFAULT_SEGMENT_MUTATIONS, value_parser = clap::value_parser!(u64).range(1..))]
    segment_mutations: u64,
    /// … or at this many MB of (uncompressed) log.
    #[arg(long = "segment-mb", value_name = "MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    segment_mb: u64,
    /// Upload at most this many MB/s.
    #[arg(long = "rate-mb", value_name = "MB")]
    rate_mb: Option<f64>,
    /// Then drop from the store's log every segment the repository confirms (read
    /// back from it). Versions of this store are then cut with `version create
    /// --repo`. The store's file does not shrink: LMDB reuses the freed pages for
    /// what is appended next.
    #[arg(long = "drop-pushed")]
    drop_pushed: bool,
}

fn repo(c: RepoCommand) -> anyhow::Result<ExitCode> {
    use tidemark::repo::{list, print, push, verify};
    match c {
        RepoCommand::Push(a) => {
            if let Some(r) = a.rate_mb {
                if !(r.is_finite() && r > 0.0) {
                    anyhow::bail!("--rate-mb {r}: give a positive number of MB/s");
                }
            }
            let options = push::PushOptions {
                store: a.store,
                repo: a.at.repo,
                source: a.source_id,
                segment_mutations: a.segment_mutations,
                segment_bytes: (a.segment_mb as usize) << 20,
                rate_mb: a.rate_mb,
                json: a.at.json,
                progress: true,
                key: repo_key(&a.at.encrypt_key_file)?,
                drop: a.drop_pushed.then_some(push::DropRule::Confirmed),
            };
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))?;
            }
            let report = push::push(&options, stop)?;
            print::push(&report, options.json);
            Ok(match &report.error {
                Some(e) => {
                    eprintln!("tidemark: {e}; push again to continue");
                    ExitCode::from(1)
                }
                None => ExitCode::SUCCESS,
            })
        }
        RepoCommand::Pull(a) => {
            let dir = working_store(a.store, Some(&a.at.repo))?;
            let key = repo_key(&a.at.encrypt_key_file)?;
            let r = tidemark::repo::pull::pull(&a.at.repo, &dir, key.as_deref())?;
            print::pull(&r, a.at.json);
            Ok(ExitCode::SUCCESS)
        }
        RepoCommand::Prune(a) => {
            let keep = match (&a.keep_within, a.keep_versions) {
                (Some(d), _) => {
                    tidemark::repo::prune::Keep::Within(duration_ns("--keep-within", d)?)
                }
                (None, Some(n)) => tidemark::repo::prune::Keep::Versions(n as usize),
                (None, None) => anyhow::bail!("give --keep-within D or --keep-versions N"),
            };
            let key = repo_key(&a.at.encrypt_key_file)?;
            let r = tidemark::repo::prune::prune(&a.at.repo, keep, a.dry_run, key.as_deref())?;
            print::prune(&r, a.at.json);
            Ok(ExitCode::SUCCESS)
        }
        RepoCommand::Ls(a) => {
            print::list(&list::list(&a.repo)?, a.json);
            Ok(ExitCode::SUCCESS)
        }
        RepoCommand::Verify(a) => {
            let key = repo_key(&a.encrypt_key_file)?;
            let report = verify::verify(&a.repo, key.as_deref())?;
            print::verify(&report, a.json);
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

#[derive(Args)]
struct ProxyArgs {
    /// Where clients connect (IP:PORT); with --upstream.
    #[arg(long, value_name = "ADDR", requires = "upstream")]
    listen: Option<String>,
    /// The node forwarded to (HOST:PORT); with --listen.
    #[arg(long, value_name = "ADDR", requires = "listen")]
    upstream: Option<String>,
    /// More routes: LISTEN=UPSTREAM (repeatable).
    #[arg(long = "route", value_name = "L=U")]
    routes: Vec<String>,
    /// Rewrite a node address drivers learn (CQL system.peers/local and events,
    /// MongoDB hello) to a sidecar address: NODE=SIDECAR, e.g.
    /// 10.0.0.5:9042=10.0.1.5:9042 (repeatable). Default: each route's upstream to
    /// its listen address.
    #[arg(long = "map", value_name = "NODE=SIDECAR")]
    map: Vec<String>,
    /// Leave every byte as the node sent it: drivers then learn the nodes' own
    /// addresses and connect to them around the proxy.
    #[arg(long = "no-rewrite", conflicts_with = "map")]
    no_rewrite: bool,
    /// What the routes carry, for the decoders: auto (default), cql or mongo.
    #[arg(long, value_name = "P")]
    protocol: Option<String>,
    /// Routes, map, TLS and metrics from a TOML file (flags add to it and win).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    #[command(flatten)]
    ship: ShipArgs,
    /// Serve Prometheus metrics on this address (GET /metrics).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Events the decoders may be behind before copies are dropped as gaps.
    #[arg(long, value_name = "N", default_value_t = 16384, value_parser = clap::value_parser!(u64).range(2048..=1_048_576))]
    queue: u64,
    /// Seconds open connections may go on after SIGINT/SIGTERM.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    drain: f64,
    /// Seconds an upstream may take to accept a connection (and TLS to shake hands).
    #[arg(long = "connect-timeout", value_name = "S", default_value_t = 10.0)]
    connect_timeout: f64,
    /// Terminate the clients' TLS with this certificate chain (PEM); with --tls-key.
    #[arg(long = "tls-cert", value_name = "F")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long = "tls-key", value_name = "F")]
    tls_key: Option<PathBuf>,
    /// Speak TLS to the nodes, expecting their certificates to name this host.
    #[arg(long = "upstream-tls", value_name = "NAME")]
    upstream_tls: Option<String>,
    /// Trust these CA certificates (PEM) for the nodes (default: the Mozilla roots).
    #[arg(long = "upstream-ca", value_name = "F")]
    upstream_ca: Option<PathBuf>,
    /// Decided mutations per group commit.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    group: u64,
    /// No fsync per group.
    #[arg(long)]
    no_sync: bool,
    /// Seconds an in-doubt write waits for a retry.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    resolve_after: f64,
    /// What an in-doubt write becomes then: keep, committed, rejected.
    #[arg(long, value_name = "POLICY", default_value = "keep")]
    in_doubt: String,
    #[arg(long)]
    json: bool,
}

fn seconds(flag: &str, s: f64) -> anyhow::Result<std::time::Duration> {
    if !(s.is_finite() && (0.0..=1e6).contains(&s)) {
        anyhow::bail!("invalid {flag} {s}: seconds, 0 or more");
    }
    Ok(std::time::Duration::from_secs_f64(s))
}

fn proxy(a: ProxyArgs) -> anyhow::Result<ExitCode> {
    use tidemark::commit::{InDoubtPolicy, TrackerConfig};
    use tidemark::proxy::{ProxyOptions, Route, RouteProtocol};
    let file = match &a.config {
        Some(path) => tidemark::proxy::config::ProxyConfig::load(path)?,
        None => Default::default(),
    };
    let mut routes = Vec::new();
    for r in &file.route {
        routes.push(Route::new(&r.listen, &r.upstream)?);
    }
    if let (Some(l), Some(u)) = (&a.listen, &a.upstream) {
        routes.push(Route::new(l, u)?);
    }
    for r in &a.routes {
        routes.push(Route::parse(r)?);
    }
    let mut map = file.map_entries();
    map.extend(a.map.iter().cloned());
    let protocol = a
        .protocol
        .or(file.protocol)
        .unwrap_or_else(|| "auto".into());
    let metrics_addr = a.metrics.or(file.metrics);
    let tls_cert = a.tls_cert.or(file.tls_cert);
    let tls_key = a.tls_key.or(file.tls_key);
    let upstream_tls = a.upstream_tls.or(file.upstream_tls);
    let upstream_ca = a.upstream_ca.or(file.upstream_ca);
    let no_rewrite = a.no_rewrite || file.no_rewrite.unwrap_or(false);
    if upstream_ca.is_some() && upstream_tls.is_none() {
        anyhow::bail!("--upstream-ca needs --upstream-tls NAME");
    }
    let in_doubt_policy = InDoubtPolicy::parse(&a.in_doubt).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid --in-doubt {:?}: keep, committed or rejected",
            a.in_doubt
        )
    })?;
    let metrics = match &metrics_addr {
        None => None,
        Some(m) => Some(
            m.parse()
                .map_err(|_| anyhow::anyhow!("invalid --metrics {m:?}: expected IP:PORT"))?,
        ),
    };
    let options = ProxyOptions {
        routes,
        protocol: RouteProtocol::parse(&protocol)?,
        metrics,
        queue: a.queue as usize,
        drain: seconds("--drain", a.drain)?,
        connect_timeout: seconds("--connect-timeout", a.connect_timeout)?,
        tls: tidemark::proxy::tls::Tls {
            acceptor: match (&tls_cert, &tls_key) {
                (Some(c), Some(k)) => Some(tidemark::proxy::tls::acceptor(c, k)?),
                (None, None) => None,
                _ => anyhow::bail!("--tls-cert and --tls-key go together"),
            },
            connector: match &upstream_tls {
                Some(name) => Some(tidemark::proxy::tls::connector(
                    upstream_ca.as_deref(),
                    name,
                )?),
                None => None,
            },
        },
        tap: tidemark::tap::TapOptions {
            store: a.store,
            group: a.group as usize,
            durability: if a.no_sync {
                tidemark::store::Durability::NoSync
            } else {
                tidemark::store::Durability::SyncPerGroup
            },
            tracker: TrackerConfig {
                resolve_after_ns: seconds("--resolve-after", a.resolve_after)?.as_nanos() as u64,
                in_doubt_policy,
                ..TrackerConfig::default()
            },
            companion: a.ship.companion(true)?,
            ..tidemark::tap::TapOptions::default()
        },
        map,
        no_rewrite,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))?;
    }
    let report = tidemark::proxy::run(&options, stop)?;
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), "summary".into());
        }
        println!("{v}");
    } else {
        eprintln!(
            "tidemark: proxy stopped: {} connections, {} bytes to the nodes, {} back, {} bytes not decoded (gaps), {} mutations appended, {} undecided",
            report.connections,
            report.bytes_c2s,
            report.bytes_s2c,
            report.gap_bytes,
            report.tap.appended,
            report.tap.undecided
        );
    }
    if let Some(e) = &report.tap.companion_error {
        eprintln!("tidemark: {e}; the log stays in the store: push it with `tidemark repo push`");
    }
    Ok(
        if report.gap_bytes > 0 || report.cut_at_drain > 0 || report.tap.companion_error.is_some() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

#[derive(Args)]
struct DemoArgs {
    /// Keep the store in this new directory (default: a temporary one, removed).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// The namespaces of a version `restore` writes and `verify` compares, and the names
/// they have in the target.
#[derive(Args)]
struct Namespaces {
    /// Only these keyspaces (globs; CQL).
    #[arg(long = "keyspace", value_name = "KS")]
    keyspaces: Vec<String>,
    /// Only these tables (globs, `t` or `ks.t`; CQL).
    #[arg(long = "table", value_name = "T")]
    tables: Vec<String>,
    /// Only these databases (globs; MongoDB).
    #[arg(long = "db", value_name = "DB")]
    dbs: Vec<String>,
    /// Only these collections (globs, `c` or `db.c`; MongoDB).
    #[arg(long = "collection", value_name = "C")]
    collections: Vec<String>,
    /// The version's namespace A under the name B in the target: ks.t=ks2.t2, ks=ks2,
    /// db.c=db2.c2, db=db2 (verify: the renames the restore used).
    #[arg(long = "rename", value_name = "A=B")]
    renames: Vec<String>,
}

#[derive(Args)]
struct RestoreArgs {
    /// The version to restore.
    #[arg(long, value_name = "V")]
    version: String,
    /// The target: cql://[user:pass@]host[:port][,host…] or mongodb://…
    #[arg(long, value_name = "URI")]
    to: String,
    #[arg(long, value_name = "DIR", required_unless_present = "repo")]
    store: Option<PathBuf>,
    /// Use the working store of this repository (where `version create --repo` cut
    /// the version).
    #[arg(long, value_name = "URL")]
    repo: Option<String>,
    #[command(flatten)]
    namespaces: Namespaces,
    /// Replication of keyspaces the restore creates: SimpleStrategy:3,
    /// NetworkTopologyStrategy:dc1=3, or a CQL map.
    #[arg(long, value_name = "R")]
    replication: Option<String>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    parallel: u64,
    /// Rows or documents per second at most.
    #[arg(long, value_name = "OPS")]
    rate: Option<f64>,
    /// Megabytes of payload per second at most.
    #[arg(long = "rate-mb", value_name = "MB")]
    rate_mb: Option<f64>,
    /// CQL consistency level of the writes.
    #[arg(long, value_name = "CL", default_value = "QUORUM")]
    consistency: String,
    /// MongoDB write concern w: majority, or a number of members.
    #[arg(long = "write-concern", value_name = "W", default_value = "majority")]
    write_concern: String,
    /// Write even over newer data in the target.
    #[arg(long)]
    overwrite: bool,
    /// Continue an interrupted restore of this version to this target.
    #[arg(long)]
    resume: bool,
    /// Print the plan and write nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VerifyArgs {
    /// The version to compare with.
    #[arg(long, value_name = "V")]
    version: String,
    /// The cluster to read: cql://… or mongodb://…
    #[arg(long, value_name = "URI")]
    against: String,
    #[arg(long, value_name = "DIR", required_unless_present = "repo")]
    store: Option<PathBuf>,
    /// Use the working store of this repository (where `version create --repo` cut
    /// the version).
    #[arg(long, value_name = "URL")]
    repo: Option<String>,
    #[command(flatten)]
    namespaces: Namespaces,
    /// CQL consistency level of the reads.
    #[arg(long, value_name = "CL", default_value = "QUORUM")]
    consistency: String,
    /// Ranges read at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    parallel: u64,
    /// Differences printed at most (all are counted).
    #[arg(long = "max-differences", value_name = "N", default_value_t = 100)]
    max_differences: usize,
    #[arg(long)]
    json: bool,
    /// Compare the write timestamps of simple cells too (CQL).
    #[arg(long)]
    timestamps: bool,
}

fn renames(given: &[String]) -> anyhow::Result<Vec<tidemark::restore::Rename>> {
    given
        .iter()
        .map(|r| tidemark::restore::Rename::parse(r))
        .collect()
}

fn restore(a: RestoreArgs) -> anyhow::Result<ExitCode> {
    let options = tidemark::restore::RestoreOptions {
        store: working_store(a.store, a.repo.as_deref())?,
        version: a.version,
        to: a.to,
        keyspaces: a.namespaces.keyspaces,
        tables: a.namespaces.tables,
        dbs: a.namespaces.dbs,
        collections: a.namespaces.collections,
        renames: renames(&a.namespaces.renames)?,
        replication: a.replication,
        parallel: a.parallel as usize,
        rate: a.rate,
        rate_mb: a.rate_mb,
        consistency: a.consistency,
        write_concern: a.write_concern,
        overwrite: a.overwrite,
        resume: a.resume,
        dry_run: a.dry_run,
        json: a.json,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))?;
    }
    let report = tidemark::restore::run(&options, stop)?;
    tidemark::restore::print::restore(&report, options.json);
    Ok(match &report.error {
        Some(e) => {
            eprintln!("tidemark: {e}; continue with --resume");
            ExitCode::from(1)
        }
        None if report.total.failed > 0 => ExitCode::from(1),
        None => ExitCode::SUCCESS,
    })
}

fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let options = tidemark::restore::VerifyOptions {
        store: working_store(a.store, a.repo.as_deref())?,
        version: a.version,
        against: a.against,
        keyspaces: a.namespaces.keyspaces,
        tables: a.namespaces.tables,
        dbs: a.namespaces.dbs,
        collections: a.namespaces.collections,
        renames: renames(&a.namespaces.renames)?,
        consistency: a.consistency,
        parallel: a.parallel as usize,
        max_differences: a.max_differences,
        json: a.json,
        timestamps: a.timestamps,
    };
    let report = tidemark::restore::verify(&options)?;
    tidemark::restore::print::verify(&report, options.json);
    Ok(if report.equal() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Args)]
struct ExportArgs {
    /// The version to export.
    #[arg(long, value_name = "V")]
    version: String,
    /// jsonl or csv.
    #[arg(long, value_name = "F")]
    format: String,
    /// A new directory for the files.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum VersionCommand {
    /// Cut a consistent version at a moment up to the tidemark and keep it in the store.
    Create(VersionCreateArgs),
    /// List the store's versions.
    List(VersionListArgs),
    /// Show a version: its time, rows per namespace, gaps and uncertain items.
    Show(VersionShowArgs),
    /// Rows and documents added, removed and changed from V1 to V2 (exit 1 when any).
    Diff(VersionDiffArgs),
}

#[derive(Args)]
struct VersionCreateArgs {
    /// The store; with --repo, the local working store the repository's sources are
    /// merged into (default: a cache directory of that repository).
    #[arg(long, value_name = "DIR", required_unless_present = "repo")]
    store: Option<PathBuf>,
    /// Cut the version from a repository: every source's segments merged into one
    /// log (up to the cluster's tidemark) in the working store first.
    #[arg(long, value_name = "URL")]
    repo: Option<String>,
    /// The repository's key, when its objects are encrypted.
    #[arg(long = "encrypt-key-file", value_name = "F", requires = "repo")]
    encrypt_key_file: Option<PathBuf>,
    /// `latest` (the tidemark), RFC 3339 UTC, or seconds since the epoch.
    #[arg(long, value_name = "T")]
    at: String,
    /// Name of the version (default: its time).
    #[arg(long, value_name = "N")]
    name: Option<String>,
    /// Cut across capture gaps (they are recorded in the version).
    #[arg(long)]
    allow_gaps: bool,
    /// Join this snapshot, or `none` for the log alone (default: the newest finished
    /// snapshot of each protocol whose reads ended by T).
    #[arg(long, value_name = "ID|none")]
    snapshot: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VersionListArgs {
    #[arg(long, value_name = "DIR", required_unless_present = "repo")]
    store: Option<PathBuf>,
    /// The versions cut from this repository (in its working store).
    #[arg(long, value_name = "URL")]
    repo: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VersionShowArgs {
    /// The version's name.
    version: String,
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VersionDiffArgs {
    /// The earlier version.
    from: String,
    /// The later version.
    to: String,
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Read every table or collection through the real driver into the store.
    Take(SnapshotTakeArgs),
    /// List the store's snapshots.
    List(SnapshotListArgs),
    /// Show one snapshot: namespaces, rows, bytes, parts and read windows.
    Show(SnapshotShowArgs),
    /// Make a snapshot from files: node-local sstabledump JSON of CQL tables (one per
    /// replica, deduplicated by the reconcile rules) or mongodump output.
    Import(SnapshotImportArgs),
}

#[derive(Args)]
struct SnapshotImportArgs {
    /// sstabledump JSON of one node's copy of a table: FILE or keyspace.table=FILE
    /// (repeatable, or several values).
    #[arg(long = "node-dump", value_name = "FILE", num_args = 1..)]
    node_dumps: Vec<String>,
    /// CQL CREATE statements of the dumps' tables (default: the schema of the
    /// store's newest CQL snapshot).
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// The table (keyspace.table) of dumps given as a bare FILE, when the schema
    /// has several.
    #[arg(long, value_name = "KS.T")]
    table: Option<String>,
    /// A mongodump output directory (db/coll.bson and .metadata.json, .gz too).
    #[arg(long, value_name = "DIR")]
    mongodump: Option<PathBuf>,
    /// A mongodump --archive file (gzip'd too).
    #[arg(long, value_name = "FILE")]
    archive: Option<PathBuf>,
    /// The cluster name to record (dumps name none).
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
    /// The store directory (created when missing).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// JSON progress and summary lines instead of a progress bar.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SnapshotTakeArgs {
    /// cql://[user:password@]host[:port][,host…] or a mongodb:// URI. Credentials
    /// are used to connect and never stored or printed.
    #[arg(long, value_name = "URI")]
    from: String,
    /// The store directory (created when missing); a tap may be appending to it.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// CQL keyspaces to read (repeatable, globs; default every non-system keyspace).
    #[arg(long = "keyspace", value_name = "KS")]
    keyspaces: Vec<String>,
    /// CQL tables to read: `table` or `keyspace.table` (repeatable, globs).
    #[arg(long = "table", value_name = "T")]
    tables: Vec<String>,
    /// MongoDB databases to read (repeatable, globs; default all but admin, local, config).
    #[arg(long = "db", value_name = "DB")]
    dbs: Vec<String>,
    /// MongoDB collections: `coll` or `db.coll` (repeatable, globs).
    #[arg(long = "collection", value_name = "C")]
    collections: Vec<String>,
    /// Parts (token ranges, _id chunks) read at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    parallel: u64,
    /// CQL consistency level of the reads.
    #[arg(long, value_name = "CL", default_value = "QUORUM")]
    consistency: String,
    /// Continue the newest unfinished snapshot of the same source: finished parts
    /// are not read again.
    #[arg(long)]
    resume: bool,
    /// JSON progress lines and a summary line instead of a progress bar.
    #[arg(long)]
    json: bool,
    /// Stop after this many parts (the snapshot stays unfinished and resumable).
    #[arg(long, value_name = "N", hide = true)]
    max_parts: Option<usize>,
    /// MongoDB: majority reads with a read window per chunk, even where the server
    /// offers snapshot reads at one cluster time.
    #[arg(long)]
    majority_reads: bool,
    /// MongoDB sharded cluster (--from is a mongos): read every shard's replica set
    /// directly at one cluster time, keeping each document only on the shard the
    /// chunk map then names its owner (orphans filtered and counted). Without
    /// snapshot reads (or with --majority-reads) the chunk map must not change
    /// during the take, else it fails and --resume reads it again.
    #[arg(long)]
    per_shard: bool,
}

#[derive(Args)]
struct SnapshotListArgs {
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// One JSON object per snapshot.
    #[arg(long)]
    json: bool,
}

fn version(c: VersionCommand) -> anyhow::Result<ExitCode> {
    use tidemark::report::version as v;
    match c {
        VersionCommand::Create(a) => v::run_create(&v::VersionCreateArgs {
            store: {
                let dir = working_store(a.store, a.repo.as_deref())?;
                if let Some(url) = &a.repo {
                    let key = repo_key(&a.encrypt_key_file)?;
                    let r = tidemark::repo::pull::pull(url, &dir, key.as_deref())?;
                    tidemark::repo::print::pull(&r, false);
                }
                dir
            },
            at: a.at,
            name: a.name,
            allow_gaps: a.allow_gaps,
            snapshot: a.snapshot,
            json: a.json,
        }),
        VersionCommand::List(a) => v::run_list(&working_store(a.store, a.repo.as_deref())?, a.json),
        VersionCommand::Show(a) => v::run_show(&a.store, &a.version, a.json),
        VersionCommand::Diff(a) => v::run_diff(&a.store, &a.from, &a.to, a.json),
    }
}

#[derive(Args)]
struct SnapshotShowArgs {
    /// Snapshot id (see `snapshot list`).
    id: u64,
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// One JSON object.
    #[arg(long)]
    json: bool,
}

fn snapshot(c: SnapshotCommand) -> anyhow::Result<ExitCode> {
    match c {
        SnapshotCommand::Take(a) => {
            let options = tidemark::snapshot::TakeOptions {
                from: a.from,
                store: a.store,
                keyspaces: a.keyspaces,
                tables: a.tables,
                dbs: a.dbs,
                collections: a.collections,
                parallel: a.parallel as usize,
                consistency: a.consistency,
                resume: a.resume,
                json: a.json,
                max_parts: a.max_parts,
                majority_reads: a.majority_reads,
                per_shard: a.per_shard,
            };
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))?;
            }
            let report = tidemark::snapshot::take(&options, stop)?;
            Ok(match report.error {
                Some(e) => {
                    eprintln!("tidemark: {e}; continue with --resume");
                    ExitCode::from(1)
                }
                None => ExitCode::SUCCESS,
            })
        }
        SnapshotCommand::List(a) => {
            tidemark::snapshot::show::run_list(&a.store, a.json).map(|()| ExitCode::SUCCESS)
        }
        SnapshotCommand::Show(a) => {
            tidemark::snapshot::show::run_show(&a.store, a.id, a.json).map(|()| ExitCode::SUCCESS)
        }
        SnapshotCommand::Import(a) => {
            tidemark::snapshot::import::run(&tidemark::snapshot::import::ImportOptions {
                store: a.store,
                node_dumps: a.node_dumps,
                schema: a.schema,
                table: a.table,
                mongodump: a.mongodump,
                archive: a.archive,
                cluster: a.cluster,
                json: a.json,
            })
            .map(|_| ExitCode::SUCCESS)
        }
    }
}

#[derive(Args)]
struct TapArgs {
    #[command(flatten)]
    ship: ShipArgs,
    /// pcap or pcapng files, read in time order as one capture.
    #[arg(
        long = "pcap",
        value_name = "FILE",
        num_args = 1..,
        required_unless_present = "interface",
        conflicts_with = "interface"
    )]
    files: Vec<PathBuf>,
    /// Capture live from this network interface instead (ends on SIGINT/SIGTERM).
    #[arg(long, value_name = "IF")]
    interface: Option<String>,
    /// With --interface: stop after this many seconds.
    #[arg(long, value_name = "S", requires = "interface")]
    duration: Option<f64>,
    /// The store directory (created when missing).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Continue an interrupted pcap run of the same files: nothing lost, nothing twice.
    #[arg(long)]
    resume: bool,
    /// A port that carries CQL (repeatable; default 9042).
    #[arg(long = "cql-port", value_name = "PORT")]
    cql_ports: Vec<u16>,
    /// A port that carries the MongoDB wire protocol (repeatable; default 27017).
    #[arg(long = "mongo-port", value_name = "PORT")]
    mongo_ports: Vec<u16>,
    /// Decided mutations per group commit (one transaction, one fsync).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    group: u64,
    /// Do not fsync each group (a power loss may lose the last groups; a crash does not).
    #[arg(long)]
    no_sync: bool,
    /// Capture seconds an in-doubt write waits for a retry to resolve it.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    resolve_after: f64,
    /// What an in-doubt write becomes at its deadline: keep, committed, rejected.
    #[arg(long, value_name = "POLICY", default_value = "keep")]
    in_doubt: String,
    /// MongoDB writes below w:majority with no replication traffic in sight stay
    /// in doubt instead of counting as committed.
    #[arg(long)]
    mongo_unreplicated_in_doubt: bool,
    /// Voting members of the MongoDB replica set, when hello replies are not captured.
    #[arg(long, value_name = "N")]
    mongo_members: Option<usize>,
    /// Print the run's report as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LogArgs {
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Only this namespace (`keyspace.table`, `db.collection`).
    #[arg(long = "ns", value_name = "NS")]
    namespace: Option<String>,
    /// Only this key, a JSON object such as '{"id": 1}' (needs --ns).
    #[arg(long, value_name = "K")]
    key: Option<String>,
    /// Commit time from (RFC 3339 UTC or seconds since the epoch).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Commit time until, inclusive.
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Only this outcome: committed, rejected, in_doubt, rolled_back, pending.
    #[arg(long, value_name = "O")]
    outcome: Option<String>,
    /// JSON lines (`mutation`) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct StatusArgs {
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "repo",
        conflicts_with = "repo"
    )]
    store: Option<PathBuf>,
    /// The repository's sources instead: how far each has shipped, the cluster's
    /// tidemark and which source holds it.
    #[arg(long, value_name = "URL")]
    repo: Option<String>,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InspectArgs {
    /// pcap or pcapng files, read in time order as one capture.
    #[arg(
        value_name = "FILE",
        required_unless_present = "interface",
        conflicts_with = "interface"
    )]
    files: Vec<PathBuf>,
    /// Capture live from this network interface instead of files.
    #[arg(long, value_name = "IF")]
    interface: Option<String>,
    /// With --interface: stop after this many seconds.
    #[arg(long, value_name = "S", requires = "interface")]
    duration: Option<f64>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// A port that carries CQL (repeatable; default 9042).
    #[arg(long = "cql-port", value_name = "PORT")]
    cql_ports: Vec<u16>,
    /// A port that carries the MongoDB wire protocol (repeatable; default 27017).
    #[arg(long = "mongo-port", value_name = "PORT")]
    mongo_ports: Vec<u16>,
}

fn tap(a: TapArgs) -> anyhow::Result<ExitCode> {
    use tidemark::commit::{InDoubtPolicy, TrackerConfig};
    use tidemark::tap::TapOptions;
    let in_doubt_policy = InDoubtPolicy::parse(&a.in_doubt).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid --in-doubt {:?}: keep, committed or rejected",
            a.in_doubt
        )
    })?;
    if !(a.resolve_after.is_finite() && (0.0..=1e9).contains(&a.resolve_after)) {
        anyhow::bail!(
            "invalid --resolve-after {}: seconds, 0 or more",
            a.resolve_after
        );
    }
    let companion = a.ship.companion(a.interface.is_some())?;
    let options = TapOptions {
        files: a.files,
        interface: a.interface,
        duration: a.duration.map(std::time::Duration::from_secs_f64),
        store: a.store,
        resume: a.resume,
        cql_ports: a.cql_ports,
        mongo_ports: a.mongo_ports,
        group: a.group as usize,
        durability: if a.no_sync {
            tidemark::store::Durability::NoSync
        } else {
            tidemark::store::Durability::SyncPerGroup
        },
        tracker: TrackerConfig {
            resolve_after_ns: (a.resolve_after * 1e9) as u64,
            in_doubt_policy,
            mongo_unreplicated_committed: !a.mongo_unreplicated_in_doubt,
            mongo_members: a.mongo_members,
            ..TrackerConfig::default()
        },
        announce_ready: true,
        ready: None,
        published: None,
        companion,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))?;
    }
    let report = tidemark::tap::run(&options, stop)?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        eprintln!(
            "tidemark: {} packets, {} mutations appended{}, {} undecided, {} duplicates merged or dropped, tidemark {}{}",
            report.packets,
            report.appended,
            if report.skipped > 0 { format!(" ({} already stored, skipped)", report.skipped) } else { String::new() },
            report.undecided,
            report.tracker.duplicates,
            tidemark::report::format_time(report.tidemark),
            if report.interrupted { "; interrupted: continue with --resume" } else { "" },
        );
    }
    for e in &report.read_errors {
        eprintln!("tidemark: {e}");
    }
    if let Some(e) = &report.companion_error {
        eprintln!("tidemark: {e}; the log stays in the store: push it with `tidemark repo push`");
    }
    Ok(
        if report.read_errors.is_empty() && report.companion_error.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tidemark::logging::init();
    let result = match cli.command {
        Command::Inspect(a) => tidemark::inspect::run(tidemark::inspect::InspectOptions {
            files: a.files,
            interface: a.interface,
            duration: a.duration.map(std::time::Duration::from_secs_f64),
            json: a.json,
            cql_ports: a.cql_ports,
            mongo_ports: a.mongo_ports,
        }),
        Command::Tap(a) => tap(a),
        Command::Log(a) => tidemark::report::run_log(&tidemark::report::LogOptions {
            store: a.store,
            namespace: a.namespace,
            key: a.key,
            since: a.since,
            until: a.until,
            outcome: a.outcome,
            json: a.json,
        })
        .map(|()| ExitCode::SUCCESS),
        Command::Status(a) => match (a.store, a.repo) {
            (_, Some(url)) => tidemark::repo::status::status(&url).map(|s| {
                tidemark::repo::print::status(&s, a.json);
                ExitCode::SUCCESS
            }),
            (Some(store), None) => tidemark::report::run_status(&tidemark::report::StatusOptions {
                store,
                json: a.json,
            })
            .map(|()| ExitCode::SUCCESS),
            (None, None) => Err(anyhow::anyhow!("give --store DIR or --repo URL")),
        },
        Command::Version(c) => version(c),
        Command::Export(a) => {
            tidemark::report::version::run_export(&tidemark::report::version::ExportArgs {
                store: a.store,
                version: a.version,
                format: a.format,
                out: a.out,
                json: a.json,
            })
        }
        Command::Snapshot(c) => snapshot(c),
        Command::Restore(a) => restore(a),
        Command::Verify(a) => verify(a),
        Command::Proxy(a) => proxy(a),
        Command::Repo(c) => repo(c),
        Command::Demo(a) => tidemark::demo::run(&tidemark::demo::DemoOptions {
            json: a.json,
            store: a.store,
        })
        .map(|r| {
            if r.equal {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tidemark: {}", one_line(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// An error as one line: a server's multi-line answer quoted inside it (an XML error
/// body) has its line breaks, and the blanks around them, folded into one space.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}
