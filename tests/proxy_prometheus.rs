//! A real Prometheus server (Debian's `prometheus`, started here on loopback) scrapes
//! `tidemark proxy --metrics` and its HTTP query API returns the proxy's counters
//! after a workload: the bytes this test pushed through, the connections it opened.
//! Prometheus parses the exposition itself, so a malformed line fails the scrape.

mod proxy_support;
mod ready_support;
mod require;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proxy_support::{free_port, proxy_command, spawn_ready, Killed};
use serde_json::Value;

/// A plain HTTP GET; the body.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

/// The value of an instant query's single sample, if Prometheus has one.
fn query(prom: SocketAddr, q: &str) -> Option<f64> {
    let body = get(prom, &format!("/api/v1/query?query={q}"))?;
    let v: Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    let sample = result.first()?;
    sample["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_scrapes_the_proxy_and_answers_with_its_counters() {
    if !require::tool("prometheus") {
        return;
    }
    let ip = Ipv4Addr::new(127, 0, 92, 1);
    // An upstream that echoes what it gets.
    let upstream = TcpListener::bind((ip, 0)).unwrap();
    let up_addr = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in upstream.incoming().take(8) {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let (listen, metrics, web) = (
        SocketAddr::from((ip, free_port(ip))),
        SocketAddr::from((ip, free_port(ip))),
        SocketAddr::from((ip, free_port(ip))),
    );
    let dir = tempfile::tempdir().unwrap();
    let proxy = spawn_ready(
        proxy_command(listen, up_addr)
            .args(["--metrics", &metrics.to_string(), "--drain", "1", "--store"])
            .arg(dir.path().join("store"))
            .stdout(Stdio::null()),
    );

    // The workload: 3 connections, 100 kB each way each.
    let payload = vec![0x5au8; 100_000];
    for _ in 0..3 {
        let mut c = TcpStream::connect(listen).unwrap();
        let mut w = c.try_clone().unwrap();
        let p = payload.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&p).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert_eq!(back.len(), payload.len());
    }

    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tidemark\n    static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .unwrap();
    let prom = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let (bytes, conns, up) = loop {
        let got = (
            query(web, "tidemark_proxy_bytes_total%7Bdirection%3D%22c2s%22%7D"),
            query(web, "tidemark_proxy_connections_total"),
            query(web, "up%7Bjob%3D%22tidemark%22%7D"),
        );
        if let (Some(b), Some(c), Some(u)) = got {
            break (b, c, u);
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never had the samples: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(up, 1.0, "the scrape succeeded (the exposition parsed)");
    assert_eq!(bytes, 300_000.0);
    assert_eq!(conns, 3.0);
    let p99 = query(
        web,
        "tidemark_proxy_added_latency_seconds%7Bquantile%3D%220.99%22%7D",
    )
    .expect("p99");
    assert!(p99 > 0.0 && p99 < 10.0, "p99 {p99}");
    drop(prom);
    drop(proxy);
}
