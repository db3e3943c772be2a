//! `tidemark proxy` forwards every byte unchanged and decides the writes in what it
//! forwarded.
//!
//! Byte identity is checked against peers written here (a client and an upstream
//! that record everything): random bytes and CQL frames followed by garbage, sent
//! in random splits both ways at once, half-closed in turn — what leaves each side
//! equals what entered the other, byte for byte. Resets and refused upstreams reach
//! the client as resets. Then the real `scylla` and `mongodb` drivers write through
//! a proxy in front of testbed nodes: their results are what the nodes answered, the
//! proxy's store holds exactly their writes as committed (compared with the
//! testbed's own ground truth), and the Prometheus endpoint counts them. A proxy
//! killed outright keeps what it decided, and what was undecided or still waiting
//! for its response (kept in the store at each group commit) is logged in doubt at
//! its next start: nothing it forwarded goes missing from the log.

mod proxy_support;
mod ready_support;
mod store_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proxy_support::{free_port, proxy_command, spawn_ready, start_proxy_with, stop, Killed};
use ready_support::Lines;

/// A running `tidemark proxy`; killed by pid if a test fails before stopping it.
struct Proxy {
    child: Killed,
    err: Lines,
}

impl Proxy {
    /// `tidemark proxy ARGS --store STORE --drain 2`, once it said it listens.
    fn start(args: &[&str], store: &Path) -> Proxy {
        let (child, err) = start_proxy_with(args, store, &[]);
        Proxy { child, err }
    }

    /// SIGTERM; returns the exit code and what it printed on stdout.
    fn stop(self) -> (Option<i32>, String) {
        let (status, out, rest) = stop(self.child, self.err);
        assert!(
            !rest.iter().any(|l| l.contains("panicked")),
            "the proxy panicked: {rest:?}"
        );
        (status.code(), out)
    }
}

/// xorshift64*: reproducible bytes and splits without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Writes `data` in random pieces (1 byte to 20 KB), sometimes pausing.
fn write_split(s: &mut TcpStream, data: &[u8], rng: &mut Rng) {
    let mut at = 0;
    while at < data.len() {
        let n = (1 + rng.below(20_000)).min(data.len() - at);
        s.write_all(&data[at..at + n]).unwrap();
        at += n;
        if rng.below(8) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.read_to_end(&mut v).expect("read to the end");
    v
}

/// A CQL v4 STARTUP frame, then `garbage`: the decoder meets a real frame and then
/// nonsense; forwarding must not care.
fn cql_then_garbage(rng: &mut Rng, garbage: usize) -> Vec<u8> {
    let body: &[u8] = b"\x00\x01\x00\x0bCQL_VERSION\x00\x053.0.0";
    let mut v = vec![0x04, 0x00, 0x00, 0x01, 0x01];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v.extend(rng.bytes(garbage));
    v
}

/// One connection through the proxy at `proxy` to the upstream listening on
/// `upstream`: `up` sent by the client and `down` by the upstream at the same time,
/// each half-closing when done. Returns (what the upstream got, what the client got).
fn exchange(
    proxy: SocketAddr,
    upstream: &TcpListener,
    up: Vec<u8>,
    down: Vec<u8>,
    seed: u64,
) -> (Vec<u8>, Vec<u8>) {
    let mut client = TcpStream::connect(proxy).unwrap();
    let (mut server, _) = upstream.accept().unwrap();
    let mut server_w = server.try_clone().unwrap();
    let mut client_w = client.try_clone().unwrap();
    let down_writer = std::thread::spawn(move || {
        let mut rng = Rng(seed ^ 0xdead_beef);
        write_split(&mut server_w, &down, &mut rng);
        server_w.shutdown(Shutdown::Write).unwrap();
    });
    let up_writer = std::thread::spawn(move || {
        let mut rng = Rng(seed);
        write_split(&mut client_w, &up, &mut rng);
        client_w.shutdown(Shutdown::Write).unwrap();
    });
    let server_reader = std::thread::spawn(move || read_all(&mut server));
    let got_down = read_all(&mut client);
    let got_up = server_reader.join().unwrap();
    up_writer.join().unwrap();
    down_writer.join().unwrap();
    (got_up, got_down)
}

#[test]
fn every_byte_crosses_unchanged_both_ways_whatever_the_decoder_makes_of_it() {
    let ip = Ipv4Addr::new(127, 0, 88, 1);
    let upstream = TcpListener::bind((ip, 0)).unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (protocol, seed) in [("auto", 1u64), ("cql", 2), ("mongo", 3)] {
        let listen = SocketAddr::from((ip, free_port(ip)));
        let proxy = Proxy::start(
            &[
                "--listen",
                &listen.to_string(),
                "--upstream",
                &up_addr.to_string(),
                "--protocol",
                protocol,
            ],
            &dir.path().join(protocol),
        );
        let mut rng = Rng(seed);
        for round in 0..4 {
            let up = match round {
                0 => rng.bytes(1 << 20),
                1 => cql_then_garbage(&mut rng, 300_000),
                2 => Vec::new(),
                _ => rng.bytes(7),
            };
            let down = match round {
                2 => rng.bytes(500_000),
                _ => {
                    let n = rng.below(400_000);
                    rng.bytes(n)
                }
            };
            let (got_up, got_down) = exchange(
                listen,
                &upstream,
                up.clone(),
                down.clone(),
                seed * 10 + round,
            );
            assert!(
                got_up == up,
                "{protocol} round {round}: client→node bytes differ ({} vs {} bytes)",
                got_up.len(),
                up.len()
            );
            assert!(
                got_down == down,
                "{protocol} round {round}: node→client bytes differ ({} vs {} bytes)",
                got_down.len(),
                down.len()
            );
        }
        let (code, _) = proxy.stop();
        assert_eq!(code, Some(0), "{protocol}: a clean stop");
    }
}

#[test]
fn resets_and_refusals_reach_the_client_as_resets() {
    let ip = Ipv4Addr::new(127, 0, 88, 2);
    let upstream = TcpListener::bind((ip, 0)).unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let closed = SocketAddr::from((ip, free_port(ip)));
    let dir = tempfile::tempdir().unwrap();
    let (l1, l2) = (
        SocketAddr::from((ip, free_port(ip))),
        SocketAddr::from((ip, free_port(ip))),
    );
    let proxy = Proxy::start(
        &[
            "--route",
            &format!("{l1}={up_addr}"),
            "--route",
            &format!("{l2}={closed}"),
            "--connect-timeout",
            "2",
        ],
        &dir.path().join("s"),
    );
    // The node resets: the client's read fails with a reset, not a clean end.
    let mut client = TcpStream::connect(l1).unwrap();
    let (server, _) = upstream.accept().unwrap();
    client.write_all(b"hello").unwrap();
    let mut five = [0u8; 5];
    let mut s = server;
    s.read_exact(&mut five).unwrap();
    assert_eq!(&five, b"hello");
    let s2 = socket_with_linger_zero(s);
    drop(s2);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    let r = client.read(&mut buf);
    assert!(
        matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "the client sees the node's reset: {r:?}"
    );
    // No node behind the route: the client is reset too (it connected to the proxy).
    let mut refused = TcpStream::connect(l2).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let r = refused.read(&mut buf);
    assert!(
        matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "a refused upstream resets the client: {r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let (code, _) = proxy.stop();
    assert_eq!(code, Some(0));
}

/// SO_LINGER 0 on a std socket (close sends RST).
fn socket_with_linger_zero(s: TcpStream) -> TcpStream {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a properly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    s
}

#[test]
fn a_stop_lets_requests_in_flight_finish_then_cuts_what_is_left_at_the_drain_time() {
    let ip = Ipv4Addr::new(127, 0, 88, 3);
    let upstream = TcpListener::bind((ip, 0)).unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let listen = SocketAddr::from((ip, free_port(ip)));
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(
        &[
            "--listen",
            &listen.to_string(),
            "--upstream",
            &up_addr.to_string(),
        ],
        &dir.path().join("s"),
    );
    // A request in flight: the node answers 1.5 s after it arrives.
    let mut busy = TcpStream::connect(listen).unwrap();
    let (mut node_busy, _) = upstream.accept().unwrap();
    busy.write_all(b"request").unwrap();
    let mut req = [0u8; 7];
    node_busy.read_exact(&mut req).unwrap();
    // An idle connection nobody closes.
    let idle = TcpStream::connect(listen).unwrap();
    let (_node_idle, _) = upstream.accept().unwrap();
    let answer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        node_busy.write_all(b"response").unwrap();
        node_busy.shutdown(Shutdown::Write).unwrap();
        node_busy
    });
    let stopped = Instant::now();
    let stopping = std::thread::spawn(move || proxy.stop());
    // The answer to the request in flight arrives after the stop signal.
    let got = read_all(&mut busy);
    assert_eq!(got, b"response");
    busy.shutdown(Shutdown::Write).unwrap();
    drop(answer.join().unwrap());
    let (code, _) = stopping.join().unwrap();
    // The idle connection was cut at the drain time (2 s), which makes the run
    // partial: exit 1.
    assert_eq!(code, Some(1));
    assert!(stopped.elapsed() >= Duration::from_millis(1500));
    let mut idle = idle;
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(idle.read(&mut b), Ok(0) | Err(_)),
        "the idle connection is closed"
    );
}

#[test]
fn decoders_that_fall_behind_get_gaps_and_forwarding_never_waits_for_them() {
    let ip = Ipv4Addr::new(127, 0, 88, 4);
    let upstream = TcpListener::bind((ip, 0)).unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let listen = SocketAddr::from((ip, free_port(ip)));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    // Decoders that sleep 500 ms per batch of events, behind a queue of 2,048 events
    // (1,024 of them for data): 120 MB in chunks of at most 64 KiB overflow it.
    let (child, err) = spawn_ready(
        proxy_command(listen, up_addr)
            .args([
                "--protocol",
                "cql",
                "--queue",
                "2048",
                "--drain",
                "2",
                "--json",
                "--store",
            ])
            .arg(&store)
            .env("TIDEMARK_TEST_SLOW_EVENTS_MS", "500")
            .stdout(Stdio::piped()),
    );
    let mut rng = Rng(9);
    let mut up = cql_then_garbage(&mut rng, 1000);
    up.resize(120 << 20, 0xab);
    let (got_up, got_down) = exchange(listen, &upstream, up.clone(), Vec::new(), 9);
    assert!(
        got_up == up,
        "every byte arrived although the decoders were behind"
    );
    assert!(got_down.is_empty());
    let (status, out, _) = stop(child, err);
    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("summary");
    let gap = summary["gap_bytes"].as_u64().unwrap();
    assert!(gap > 0 && gap < up.len() as u64, "{summary}");
    assert_eq!(
        status.code(),
        Some(1),
        "bytes not decoded make the run partial"
    );
    // The store knows what it did not see: the gap is recorded, as a tap records a
    // capture gap.
    let st = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["status", "--json", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&st.stdout).expect("status json");
    let gaps = status["gaps"].as_array().map(Vec::len).unwrap_or(0);
    assert!(gaps >= 1, "{status}");
}

/// Connections the many-connections test holds at once: the 10,000, or as
/// many as this machine's open-files hard limit lets both processes hold (this
/// process and the proxy each need two descriptors per connection, plus a margin for
/// the runtime, the store and the listeners). The machines seen so far allow 20,000
/// per process without CAP_SYS_RESOURCE, which makes it 9,936 there.
fn connections_this_machine_allows() -> usize {
    const WANT: usize = 10_000;
    const MARGIN: u64 = 512;
    // SAFETY: getrlimit/setrlimit with a valid, initialized struct.
    let hard = unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 1000;
        }
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        l.rlim_max
    };
    let fits = (hard.saturating_sub(MARGIN) / 2) as usize;
    if fits < WANT {
        eprintln!(
            "NOTE {}: this machine's open-files hard limit is {hard} per process, so {fits} connections at once instead of {WANT} (two descriptors each in the proxy)",
            module_path!()
        );
    }
    fits.min(WANT)
}

#[test]
fn thousands_of_connections_at_once_each_get_their_own_bytes_back() {
    let connections = connections_this_machine_allows();
    let ip = Ipv4Addr::new(127, 0, 88, 5);
    let upstream = TcpListener::bind((ip, 0)).unwrap();
    let up_addr = upstream.local_addr().unwrap();
    // The node: echo each connection's first 8 bytes, then hold it open.
    let node = std::thread::spawn(move || {
        let mut held = Vec::with_capacity(connections);
        for _ in 0..connections {
            let (mut c, _) = upstream.accept().unwrap();
            let mut b = [0u8; 8];
            c.read_exact(&mut b).unwrap();
            c.write_all(&b).unwrap();
            held.push(c);
        }
        held
    });
    let listen = SocketAddr::from((ip, free_port(ip)));
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(
        &[
            "--listen",
            &listen.to_string(),
            "--upstream",
            &up_addr.to_string(),
        ],
        &dir.path().join("s"),
    );
    let mut clients = Vec::with_capacity(connections);
    for i in 0..connections as u64 {
        let mut c = TcpStream::connect(listen).unwrap();
        c.write_all(&i.to_be_bytes()).unwrap();
        clients.push(c);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut b = [0u8; 8];
        c.read_exact(&mut b).unwrap();
        assert_eq!(
            u64::from_be_bytes(b),
            i as u64,
            "connection {i} got another's bytes"
        );
    }
    let held = node.join().unwrap();
    assert_eq!(held.len(), connections);
    drop(clients);
    drop(held);
    let (code, _) = proxy.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn a_config_file_gives_the_routes_and_a_bad_one_is_refused_in_one_line() {
    let ip = Ipv4Addr::new(127, 0, 88, 6);
    let upstream = TcpListener::bind((ip, 0)).unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let listen = SocketAddr::from((ip, free_port(ip)));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!("protocol = \"cql\"\n[[route]]\nlisten = \"{listen}\"\nupstream = \"{up_addr}\"\n"),
    )
    .unwrap();
    let proxy = Proxy::start(
        &["--config", config.to_str().unwrap()],
        &dir.path().join("s"),
    );
    let mut rng = Rng(6);
    let up = rng.bytes(10_000);
    let down = rng.bytes(20_000);
    let (got_up, got_down) = exchange(listen, &upstream, up.clone(), down.clone(), 6);
    assert!(got_up == up && got_down == down);
    let (code, _) = proxy.stop();
    assert_eq!(code, Some(0));

    std::fs::write(
        &config,
        "[[route]]\nlisten = \"127.0.0.1:1\"\nupstreem = \"x:1\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["proxy", "--config", config.to_str().unwrap(), "--store"])
        .arg(dir.path().join("s2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("tidemark: --config") && err.contains("upstreem"),
        "{err}"
    );
}

#[test]
fn writes_left_undecided_when_the_proxy_dies_are_logged_in_doubt_at_its_next_start() {
    let ip = Ipv4Addr::new(127, 0, 88, 7);
    let upstream = TcpListener::bind((ip, 0)).unwrap();
    let up_addr = upstream.local_addr().unwrap();
    // A node that answers STARTUP with READY and the write with a WriteTimeout: the
    // write is in doubt, and waits (undecided, 10 s) for a retry that would settle it.
    let node = std::thread::spawn(move || {
        let (mut c, _) = upstream.accept().unwrap();
        let frame = |c: &mut TcpStream| {
            let mut head = [0u8; 9];
            c.read_exact(&mut head).unwrap();
            let len = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) as usize;
            let mut body = vec![0u8; len];
            c.read_exact(&mut body).unwrap();
            head
        };
        let startup = frame(&mut c);
        c.write_all(&[0x84, 0, startup[2], startup[3], 0x02, 0, 0, 0, 0])
            .unwrap();
        let query = frame(&mut c);
        let msg = b"Operation timed out";
        let mut body = 0x1100u32.to_be_bytes().to_vec();
        body.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        body.extend_from_slice(msg);
        body.extend_from_slice(&4u16.to_be_bytes()); // QUORUM
        body.extend_from_slice(&0i32.to_be_bytes()); // received: none
        body.extend_from_slice(&2i32.to_be_bytes()); // block for
        body.extend_from_slice(&(6u16).to_be_bytes());
        body.extend_from_slice(b"SIMPLE");
        let mut err = vec![0x84, 0, query[2], query[3], 0x00];
        err.extend_from_slice(&(body.len() as u32).to_be_bytes());
        err.extend_from_slice(&body);
        c.write_all(&err).unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    });
    let listen = SocketAddr::from((ip, free_port(ip)));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let args = [
        "--listen".to_string(),
        listen.to_string(),
        "--upstream".to_string(),
        up_addr.to_string(),
        "--protocol".to_string(),
        "cql".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proxy = Proxy::start(&args, &store);
    let mut client = TcpStream::connect(listen).unwrap();
    let mut rng = Rng(7);
    let startup = cql_then_garbage(&mut rng, 0);
    client.write_all(&startup).unwrap();
    let mut ready = [0u8; 9];
    client.read_exact(&mut ready).unwrap();
    assert_eq!(ready[4], 0x02, "READY");
    let q = b"INSERT INTO ks.t (id, v) VALUES (1, 'in flight')";
    let mut body = (q.len() as u32).to_be_bytes().to_vec();
    body.extend_from_slice(q);
    body.extend_from_slice(&[0x00, 0x04, 0x00]); // QUORUM, no flags
    let mut frame = vec![0x04, 0x00, 0x00, 0x02, 0x07];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    client.write_all(&frame).unwrap();
    let mut answer = [0u8; 9];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(answer[4], 0x00, "ERROR");
    // Wait until the store holds the write as undecided, then kill the proxy.
    let status = |store: &Path| -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["status", "--json", "--store"])
            .arg(store)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&store)["undecided"].as_array().map_or(0, Vec::len) == 0 {
        if Instant::now() > deadline {
            let log = Command::new(env!("CARGO_BIN_EXE_tidemark"))
                .args(["log", "--json", "--store"])
                .arg(&store)
                .output()
                .unwrap();
            panic!(
                "the write never reached the store as undecided: {} / {}",
                status(&store),
                String::from_utf8_lossy(&log.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    proxy.child.0.kill().unwrap();
    proxy.child.0.wait().unwrap();
    drop(client);
    node.join().unwrap();

    // The next run settles it: in doubt, no response.
    let proxy = Proxy::start(&args, &store);
    let (code, _) = proxy.stop();
    assert_eq!(code, Some(0));
    assert_eq!(
        status(&store)["undecided"].as_array().map(Vec::len),
        Some(0)
    );
    let log = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["log", "--json", "--ns", "ks.t", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&log.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "in_doubt");
    assert_eq!(lines[0]["reason"], "timeout", "{}", lines[0]);
}

/// What a proxy run left parked is settled at the next start, each for what it
/// waited for: an acknowledged MongoDB `w:1` write waiting for the commit point is
/// in doubt as `unreplicated` (it had its response: the run that watched the set's
/// term is gone), a request still in flight as `no_response`. Before, both were
/// said to have had no response.
#[test]
fn parked_writes_are_settled_at_the_next_start_for_what_each_waited_for() {
    use tidemark::store::{Outcome, StoreOptions, TxnExtras, Undecided};
    let ip = Ipv4Addr::new(127, 0, 88, 9);
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("s");
    let park = |id: Vec<u8>, doc: u64, note: &str| {
        let mut m = store_support::mongo("db.c", doc, 1_000, 64);
        m.outcome = Outcome::Pending;
        m.evidence.note = note.into();
        (
            id,
            Undecided {
                first_seen: 1_000,
                mutation: m,
                tracker_state: Vec::new(),
            },
        )
    };
    {
        let store = tidemark::store::Store::create(&store_dir, &StoreOptions::for_tests()).unwrap();
        let mut in_flight = tidemark::commit::IN_FLIGHT_ID_PREFIX.to_vec();
        in_flight.extend_from_slice(&0u64.to_be_bytes());
        let extras = TxnExtras {
            undecided: vec![
                park(
                    7u64.to_be_bytes().to_vec(),
                    1,
                    "awaiting_majority: acknowledged w:1",
                ),
                park(in_flight, 2, "the response has not arrived"),
            ],
            tidemark: Some(1_000),
            ..TxnExtras::default()
        };
        store.append_batch_with(&[], &extras).unwrap();
    }
    let listen = SocketAddr::from((ip, free_port(ip)));
    let upstream = SocketAddr::from((ip, free_port(ip)));
    let args = [
        "--listen".to_string(),
        listen.to_string(),
        "--upstream".to_string(),
        upstream.to_string(),
        "--protocol".to_string(),
        "mongo".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _) = Proxy::start(&args, &store_dir).stop();
    assert_eq!(code, Some(0));
    let lines = log_of(&store_dir, "db.c");
    assert_eq!(lines.len(), 2, "{lines:?}");
    let reason_of = |id: i64| {
        let line = lines
            .iter()
            .find(|l| l["key"]["_id"] == id)
            .unwrap_or_else(|| panic!("no line for _id {id}: {lines:?}"));
        assert_eq!(line["outcome"], "in_doubt", "{line}");
        line["reason"].as_str().unwrap_or("").to_string()
    };
    let acknowledged = reason_of(1);
    assert!(acknowledged.starts_with("unreplicated:"), "{acknowledged}");
    assert!(acknowledged.contains("awaiting_majority"), "{acknowledged}");
    assert!(reason_of(2).starts_with("no_response:"), "{lines:?}");
}

/// `tidemark status --json` of a store (empty when it cannot be read yet).
fn status_of(store: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["status", "--json", "--store"])
        .arg(store)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// `tidemark log --json` lines of one namespace.
fn log_of(store: &Path, ns: &str) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["log", "--json", "--ns", ns, "--store"])
        .arg(store)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A node that takes one connection, lets `answer` reply to what must be answered
/// (a CQL STARTUP), then reads everything and answers nothing more: the write sent
/// after stays in flight until the connection ends.
fn silent_node(
    ip: Ipv4Addr,
    answer: fn(&mut TcpStream),
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let upstream = TcpListener::bind((ip, 0)).unwrap();
    let addr = upstream.local_addr().unwrap();
    let node = std::thread::spawn(move || {
        let (mut c, _) = upstream.accept().unwrap();
        answer(&mut c);
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    });
    (addr, node)
}

/// Sends a write through a proxy to a node that never answers it, kills the proxy
/// (SIGKILL: no drain, no flush, no flow end) once the store shows the request as
/// undecided, and restarts it: the write must be in the log in doubt (no response),
/// not missing. Before this, a request still waiting for its response inside the
/// decoders at a crash was in no store record at all.
fn a_write_in_flight_at_a_crash_is_logged_in_doubt(
    protocol: &str,
    ip: Ipv4Addr,
    answer: fn(&mut TcpStream),
    talk: fn(&mut TcpStream),
    ns: &str,
) {
    let (up_addr, node) = silent_node(ip, answer);
    let listen = SocketAddr::from((ip, free_port(ip)));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let args = [
        "--listen".to_string(),
        listen.to_string(),
        "--upstream".to_string(),
        up_addr.to_string(),
        "--protocol".to_string(),
        protocol.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proxy = Proxy::start(&args, &store);
    let mut client = TcpStream::connect(listen).unwrap();
    talk(&mut client);
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let s = status_of(&store);
        let undecided = s["undecided"].as_array().cloned().unwrap_or_default();
        if let Some(u) = undecided.iter().find(|u| u["namespace"] == ns) {
            break u.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the request in flight never reached the store: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // `status` says what it waits for.
    assert_eq!(seen["outcome"], "pending", "{seen}");
    assert!(
        seen["reason"]
            .as_str()
            .unwrap_or("")
            .contains("response has not arrived"),
        "{seen}"
    );
    assert!(log_of(&store, ns).is_empty(), "nothing is decided yet");
    proxy.child.0.kill().unwrap();
    proxy.child.0.wait().unwrap();
    drop(client);
    node.join().unwrap();

    let proxy = Proxy::start(&args, &store);
    let (code, _) = proxy.stop();
    assert_eq!(code, Some(0));
    assert_eq!(
        status_of(&store)["undecided"].as_array().map(Vec::len),
        Some(0),
        "settled at the restart"
    );
    let lines = log_of(&store, ns);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "in_doubt", "{}", lines[0]);
    let reason = lines[0]["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("no_response:"), "{}", lines[0]);
    assert_eq!(lines[0]["namespace"], ns);
}

/// Reads one CQL frame; returns its header.
fn cql_frame(c: &mut TcpStream) -> [u8; 9] {
    let mut head = [0u8; 9];
    c.read_exact(&mut head).unwrap();
    let len = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) as usize;
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).unwrap();
    head
}

#[test]
fn a_cql_write_in_flight_when_the_proxy_dies_is_logged_in_doubt_at_its_next_start() {
    a_write_in_flight_at_a_crash_is_logged_in_doubt(
        "cql",
        Ipv4Addr::new(127, 0, 88, 8),
        |c| {
            let startup = cql_frame(c);
            c.write_all(&[0x84, 0, startup[2], startup[3], 0x02, 0, 0, 0, 0])
                .unwrap();
        },
        |client| {
            let mut rng = Rng(8);
            client.write_all(&cql_then_garbage(&mut rng, 0)).unwrap();
            let mut ready = [0u8; 9];
            client.read_exact(&mut ready).unwrap();
            assert_eq!(ready[4], 0x02, "READY");
            let q = b"INSERT INTO ks.inflight (id, v) VALUES (1, 'sent')";
            let mut body = (q.len() as u32).to_be_bytes().to_vec();
            body.extend_from_slice(q);
            body.extend_from_slice(&[0x00, 0x04, 0x00]); // QUORUM, no flags
            let mut frame = vec![0x04, 0x00, 0x00, 0x02, 0x07];
            frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
            frame.extend_from_slice(&body);
            client.write_all(&frame).unwrap();
        },
        "ks.inflight",
    );
}

#[test]
fn a_mongo_write_in_flight_when_the_proxy_dies_is_logged_in_doubt_at_its_next_start() {
    a_write_in_flight_at_a_crash_is_logged_in_doubt(
        "mongo",
        Ipv4Addr::new(127, 0, 88, 9),
        |_| {},
        |client| {
            let body = bson::doc! {
                "insert": "inflight",
                "documents": [{"_id": 1, "v": "sent"}],
                "ordered": true,
                "writeConcern": {"w": "majority"},
                "$db": "d",
            };
            let mut section = vec![0u8]; // kind 0: the body
            body.to_writer(&mut section).unwrap();
            let len = 16 + 4 + section.len();
            let mut msg = Vec::with_capacity(len);
            msg.extend_from_slice(&(len as i32).to_le_bytes());
            msg.extend_from_slice(&7i32.to_le_bytes()); // requestID
            msg.extend_from_slice(&0i32.to_le_bytes()); // responseTo
            msg.extend_from_slice(&2013i32.to_le_bytes()); // OP_MSG
            msg.extend_from_slice(&0u32.to_le_bytes()); // flagBits
            msg.extend_from_slice(&section);
            client.write_all(&msg).unwrap();
        },
        "d.inflight",
    );
}
