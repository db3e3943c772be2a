//! proxy-bench: requests through `tidemark proxy` (decoding and the store on) against
//! the same requests straight to the node and through HAProxy in TCP mode, in one run
//! (issue #15). CQL and MongoDB, 1 and 16 connections, 100 B and 10 KB requests; then
//! the resident memory of each proxy holding 10,000 idle connections.
//!
//! `cargo build --release -p tidemark --bin tidemark && cargo run --release -p tidemark-bench --bin proxy-bench [-- --requests 5000]`
//!
//! The nodes are the testbed's (1 CQL node, a 1-member replica set) in this process;
//! HAProxy (Debian's, `apt install haproxy`) and tidemark proxy run as processes of
//! their own, started and stopped by pid here. The load is one request in flight per
//! connection (a request, its whole response, the next), written as raw frames: CQL
//! v4 QUERY with two bound values (`INSERT INTO pb.t (id, v) VALUES (?, ?)`, v of the
//! request size) at ONE; MongoDB OP_MSG `insert` of one document with a string of
//! the request size, w:1. Latency is per request in an HDR histogram; what is
//! compared is the p99 each proxy adds over direct and throughput / direct.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use tidemark_testbed::{ClusterConfig, CqlCluster, MongoReplicaSet, ReplSetConfig};

#[derive(Parser, Debug)]
#[command(
    about = "tidemark proxy vs direct vs HAProxy: throughput, added p99, RSS with idle connections"
)]
struct Args {
    /// Requests per (target, protocol, connections, size) measurement.
    #[arg(long, default_value_t = 4000)]
    requests: usize,
    /// Idle connections for the memory measurement (0: skip it). Each costs a proxy
    /// two descriptors; machines whose hard limit is 20,000 per process (this one)
    /// cannot hold 10,000 through any proxy, hence 9,000.
    #[arg(long, default_value_t = 9_000)]
    idle: usize,
}

/// A child process killed by pid when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn wait_listening(addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Cql,
    Mongo,
}

/// One connection speaking raw frames.
struct Client {
    s: TcpStream,
    proto: Proto,
    buf: Vec<u8>,
    id: i32,
}

fn cql_frame(stream: i16, opcode: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x04, 0x00];
    f.extend_from_slice(&stream.to_be_bytes());
    f.push(opcode);
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn cql_query(text: &str, values: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(text.len() as u32).to_be_bytes());
    b.extend_from_slice(text.as_bytes());
    b.extend_from_slice(&1u16.to_be_bytes()); // ONE
    if values.is_empty() {
        b.push(0);
    } else {
        b.push(0x01);
        b.extend_from_slice(&(values.len() as u16).to_be_bytes());
        for v in values {
            b.extend_from_slice(&(v.len() as i32).to_be_bytes());
            b.extend_from_slice(v);
        }
    }
    b
}

fn mongo_msg(id: i32, doc: &bson::Document) -> Result<Vec<u8>> {
    let body = doc.to_vec()?;
    let len = 16 + 4 + 1 + body.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as i32).to_le_bytes());
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&0i32.to_le_bytes());
    m.extend_from_slice(&2013i32.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.push(0);
    m.extend_from_slice(&body);
    Ok(m)
}

impl Client {
    fn connect(addr: SocketAddr, proto: Proto) -> Result<Client> {
        let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = Client {
            s,
            proto,
            buf: vec![0; 64 * 1024],
            id: 0,
        };
        if proto == Proto::Cql {
            let mut startup = Vec::new();
            startup.extend_from_slice(&1u16.to_be_bytes());
            for s in ["CQL_VERSION", "3.0.0"] {
                startup.extend_from_slice(&(s.len() as u16).to_be_bytes());
                startup.extend_from_slice(s.as_bytes());
            }
            c.round_trip(&cql_frame(0, 0x01, &startup))?;
        }
        Ok(c)
    }

    /// Sends one request and reads its whole response.
    fn round_trip(&mut self, req: &[u8]) -> Result<()> {
        self.s.write_all(req)?;
        let (head, len_of): (usize, fn(&[u8]) -> usize) = match self.proto {
            Proto::Cql => (9, |h| {
                u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as usize + 9
            }),
            Proto::Mongo => (4, |h| {
                i32::from_le_bytes([h[0], h[1], h[2], h[3]]).max(4) as usize
            }),
        };
        self.s.read_exact(&mut self.buf[..head])?;
        let total = len_of(&self.buf[..head]);
        if total > self.buf.len() {
            self.buf.resize(total, 0);
        }
        self.s.read_exact(&mut self.buf[head..total])?;
        if self.proto == Proto::Cql && self.buf[4] == 0x00 {
            bail!("the node answered ERROR");
        }
        Ok(())
    }

    fn request(&mut self, value: &[u8]) -> Result<()> {
        self.id += 1;
        let req = match self.proto {
            Proto::Cql => cql_frame(
                1,
                0x07,
                &cql_query(
                    "INSERT INTO pb.t (id, v) VALUES (?, ?)",
                    &[&self.id.to_be_bytes(), value],
                ),
            ),
            Proto::Mongo => mongo_msg(
                self.id,
                &bson::doc! {
                    "insert": "c",
                    "documents": [ { "_id": self.id, "v": String::from_utf8_lossy(value).to_string() } ],
                    "$db": "pb",
                },
            )?,
        };
        self.round_trip(&req)
    }
}

/// `requests` requests over `conns` connections to `addr`: (requests/s, histogram µs).
fn measure(
    addr: SocketAddr,
    proto: Proto,
    conns: usize,
    size: usize,
    requests: usize,
) -> Result<(f64, Histogram<u64>)> {
    let per = requests / conns;
    let started = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|k| {
            std::thread::spawn(move || -> Result<Histogram<u64>> {
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                let mut c = Client::connect(addr, proto)?;
                c.id = (k * 1_000_000) as i32;
                let value = vec![b'x'; size];
                for _ in 0..per {
                    let t = Instant::now();
                    c.request(&value)?;
                    h.record((t.elapsed().as_micros() as u64).max(1))?;
                }
                Ok(h)
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for h in handles {
        all.add(
            h.join()
                .map_err(|_| anyhow::anyhow!("a load thread panicked"))??,
        )?;
    }
    Ok(((per * conns) as f64 / started.elapsed().as_secs_f64(), all))
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

fn tidemark_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("tidemark");
    if !bin.exists() {
        bail!(
            "{} is missing: cargo build --release -p tidemark --bin tidemark",
            bin.display()
        );
    }
    Ok(bin)
}

fn main() -> Result<()> {
    let a = Args::parse();
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cql = rt.block_on(CqlCluster::start(ClusterConfig {
        nodes: 1,
        base_addr: Ipv4Addr::new(127, 0, 93, 1),
        port: 0,
        ..ClusterConfig::default()
    }))?;
    let mongo = rt.block_on(MongoReplicaSet::start(ReplSetConfig {
        members: 1,
        base_addr: Ipv4Addr::new(127, 0, 93, 11),
        port: 0,
        ..ReplSetConfig::default()
    }))?;
    let cql_node = cql.addresses()[0];
    let mongo_node = mongo.addresses()[0];
    {
        let mut c = Client::connect(cql_node, Proto::Cql)?;
        for q in [
            "CREATE KEYSPACE pb WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            "CREATE TABLE pb.t (id int PRIMARY KEY, v text)",
        ] {
            c.round_trip(&cql_frame(1, 0x07, &cql_query(q, &[])))?;
        }
    }
    let ip = Ipv4Addr::new(127, 0, 93, 100);
    let port = |_: ()| SocketAddr::from((ip, free_port(ip)));
    let (hc, hm, tc, tm) = (port(()), port(()), port(()), port(()));
    let (hi, ti, holder_addr) = (port(()), port(()), port(()));
    // The idle connections' upstream: a process of its own that accepts and holds
    // (this process holds the clients' ends; one process cannot hold both within
    // the descriptor limit).
    let holder = Started(
        Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import resource,socket\nh=resource.getrlimit(resource.RLIMIT_NOFILE)[1]\nresource.setrlimit(resource.RLIMIT_NOFILE,(h,h))\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{}',{}))\ns.listen(4096)\nheld=[]\nwhile True:\n    held.append(s.accept()[0])\n",
                holder_addr.ip(),
                holder_addr.port()
            ))
            .spawn()
            .context("start the idle holder (python3)")?,
    );
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 9600\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\nfrontend cql\n  bind {hc}\n  default_backend cqln\nbackend cqln\n  server n1 {cql_node}\nfrontend mongo\n  bind {hm}\n  default_backend mongon\nbackend mongon\n  server m1 {mongo_node}\nfrontend idle\n  bind {hi}\n  default_backend idlen\nbackend idlen\n  server i1 {holder_addr}\n"
        ),
    )?;
    let haproxy = Started(
        Command::new("haproxy")
            .arg("-f")
            .arg(&cfg)
            .arg("-db")
            .stdout(Stdio::null())
            .spawn()
            .context("start haproxy (apt install haproxy)")?,
    );
    let tidemark = Started(
        Command::new(tidemark_binary()?)
            .args([
                "proxy",
                "--route",
                &format!("{tc}={cql_node}"),
                "--route",
                &format!("{tm}={mongo_node}"),
                "--route",
                &format!("{ti}={holder_addr}"),
            ])
            .arg("--store")
            .arg(dir.path().join("store"))
            .stdout(Stdio::null())
            .spawn()
            .context("start tidemark proxy")?,
    );
    for addr in [holder_addr, hc, hm, tc, tm, hi, ti] {
        wait_listening(addr)?;
    }
    println!("| protocol | conns | size | direct req/s | direct p99 ms | haproxy req/s | haproxy added p99 ms | tidemark req/s | tidemark added p99 ms | tidemark / direct throughput |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (proto, name, node, via_h, via_t) in [
        (Proto::Cql, "cql", cql_node, hc, tc),
        (Proto::Mongo, "mongo", mongo_node, hm, tm),
    ] {
        for conns in [1usize, 16] {
            for size in [100usize, 10_000] {
                let mut results = Vec::new();
                for addr in [node, via_h, via_t] {
                    results.push(measure(addr, proto, conns, size, a.requests)?);
                }
                let p99 = |h: &Histogram<u64>| h.value_at_quantile(0.99) as f64 / 1000.0;
                let direct = p99(&results[0].1);
                println!(
                    "| {name} | {conns} | {size} | {:.0} | {:.2} | {:.0} | {:+.2} | {:.0} | {:+.2} | {:.2} |",
                    results[0].0,
                    direct,
                    results[1].0,
                    p99(&results[1].1) - direct,
                    results[2].0,
                    p99(&results[2].1) - direct,
                    results[2].0 / results[0].0
                );
            }
        }
    }
    if a.idle > 0 {
        for (label, addr, pid) in [
            ("haproxy", hi, haproxy.0.id()),
            ("tidemark proxy", ti, tidemark.0.id()),
        ] {
            let before = rss_kb(pid);
            let mut held = Vec::with_capacity(a.idle);
            for _ in 0..a.idle {
                held.push(TcpStream::connect(addr)?);
            }
            std::thread::sleep(Duration::from_secs(2));
            let after = rss_kb(pid);
            println!(
                "{label}: RSS {:.1} MB before, {:.1} MB with {} idle connections ({:.1} KB each)",
                before as f64 / 1024.0,
                after as f64 / 1024.0,
                a.idle,
                after.saturating_sub(before) as f64 / a.idle as f64
            );
            drop(held);
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    drop(tidemark);
    drop(haproxy);
    drop(holder);
    cql.stop();
    mongo.stop();
    Ok(())
}
