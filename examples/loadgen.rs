//! A fixed-rate (open-loop) HTTPS load generator for `scripts/bench.sh`:
//! sends one request every 1/rate seconds whatever the answers' latency, and
//! measures each latency from the moment its request was *due*, so a server
//! that falls behind shows it in the percentiles (no coordinated omission).
//!
//! ```text
//! loadgen --url URL --rate N --seconds S --ca CERT.pem [--header 'K: V']... [--body JSON]
//!         [--connections C] [--warmup-url URL]
//! ```
//! Prints `rate=… sent=… ok=… errors=… p50_ms=… p99_ms=… max_ms=…`.
//!
//! Like wrk2, it uses a fixed set of `C` keep-alive connections (default 64),
//! opened before the timed run with concurrent GETs of `--warmup-url`
//! (default: `/healthz` of the same host): at most `C` requests are in flight,
//! and a request that finds every connection busy waits for one, its latency
//! still counted from when it was due. Requests then measure the server, not
//! TLS handshakes: with a pool that grows whenever every connection is busy,
//! any hiccup of the server made the generator open hundreds of connections at
//! once, and their handshakes, on the same two cores, turned a 15 ms pause
//! into a backlog of half a second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

struct Options {
    url: String,
    rate: f64,
    seconds: f64,
    ca: String,
    headers: HeaderMap,
    body: Option<String>,
    connections: usize,
    warmup_url: Option<String>,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        url: String::new(),
        rate: 100.0,
        seconds: 10.0,
        ca: String::new(),
        headers: HeaderMap::new(),
        body: None,
        connections: 64,
        warmup_url: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => o.url = value,
            "--rate" => o.rate = value.parse().expect("--rate is a number"),
            "--seconds" => o.seconds = value.parse().expect("--seconds is a number"),
            "--connections" => o.connections = value.parse().expect("--connections is a number"),
            "--warmup-url" => o.warmup_url = Some(value),
            "--ca" => o.ca = value,
            "--body" => o.body = Some(value),
            "--header" => {
                let (name, v) = value.split_once(':').expect("--header 'Name: value'");
                o.headers.insert(
                    HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                    HeaderValue::from_str(v.trim()).unwrap(),
                );
            }
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!o.url.is_empty() && !o.ca.is_empty(), "--url and --ca are required");
    o
}

#[tokio::main]
async fn main() {
    let o = options();
    let cert = reqwest::Certificate::from_pem(&std::fs::read(&o.ca).expect("read --ca")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(cert)
        .http1_only()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let warmup = o.warmup_url.clone().unwrap_or_else(|| {
        let mut url = reqwest::Url::parse(&o.url).expect("--url is a URL");
        url.set_path("/healthz");
        url.set_query(None);
        url.to_string()
    });
    let opening: Vec<_> = (0..o.connections)
        .map(|_| {
            let request = client.get(&warmup);
            tokio::spawn(async move { request.send().await.map(|r| r.status().is_success()) })
        })
        .collect();
    for task in opening {
        assert!(
            matches!(task.await.unwrap(), Ok(true)),
            "warm-up request to {warmup} failed"
        );
    }
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(o.connections));
    let interval = Duration::from_secs_f64(1.0 / o.rate);
    let total = (o.rate * o.seconds).round() as u64;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let request = match &o.body {
            Some(body) => client.post(&o.url).body(body.clone()),
            None => client.get(&o.url),
        }
        .headers(o.headers.clone());
        let slots = std::sync::Arc::clone(&slots);
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let ok = match request.send().await {
                // The body is read, so the connection is free for the next request.
                Ok(r) => r.status().is_success() & r.bytes().await.is_ok(),
                Err(_) => false,
            };
            (ok, due.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut errors = 0u64;
    for t in tasks {
        let (ok, latency) = t.await.unwrap();
        if !ok {
            errors += 1;
        }
        latencies.push(latency);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "rate={:.1} sent={} ok={} errors={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        total as f64 / elapsed,
        total,
        total - errors,
        errors,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}
