//! Throughput of the registry's REST API, against a trivial axum handler in the
//! same run as a baseline:
//!
//! `cargo run --release -p sluice-schema-registry --example registry_bench -- [schemas] [lookups] [concurrency]`
//!
//! Starts the registry on a free port with a temporary directory, registers
//! `schemas` (default 1000) distinct schemas, then does `lookups` (default
//! 100000) `GET /schemas/ids/{id}` over the ids, one request at a time from one
//! keep-alive reqwest client; then the same number of `GET /hello` against a
//! minimal axum server. Both are then repeated with `concurrency` (default 8)
//! requests in flight from the same client (its pool keeps one connection per
//! in-flight request). Prints the figures and their ratios and appends a line
//! to `schema-registry/BENCH.md`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sluice_schema_registry::{serve, Registry};

const V1: &str = "application/vnd.schemaregistry.v1+json";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let schemas: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let lookups: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }

    // The registry.
    let dir = tempfile::tempdir()?;
    let reg = Arc::new(Registry::open(dir.path())?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, reg, async {
        let _ = stop_rx.await;
    }));

    // The baseline: the smallest axum handler.
    let hello = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }));
    let hello_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hello_base = format!("http://{}", hello_listener.local_addr()?);
    tokio::spawn(async move { axum::serve(hello_listener, hello).await });

    let http = reqwest::Client::builder().build()?;

    // Registrations.
    let t0 = Instant::now();
    let mut ids = Vec::with_capacity(schemas);
    for i in 0..schemas {
        let schema = format!(
            r#"{{"type":"record","name":"Value","namespace":"bench.t{i}","fields":[{{"name":"id","type":"long"}},{{"name":"f{i}","type":["null","string"],"default":null}}]}}"#
        );
        let body = serde_json::json!({ "schema": schema }).to_string();
        let resp = http
            .post(format!("{base}/subjects/bench.t{i}-value/versions"))
            .header("content-type", V1)
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let v: serde_json::Value = resp.json().await?;
        if !status.is_success() {
            return Err(format!("registration {i} failed: HTTP {status}: {v}").into());
        }
        ids.push(v["id"].as_u64().ok_or("no id")?);
    }
    let reg_elapsed = t0.elapsed();
    let registrations_per_s = schemas as f64 / reg_elapsed.as_secs_f64();

    // Lookups by id (warm-up first), then the baseline.
    let urls: Vec<String> = ids
        .iter()
        .map(|id| format!("{base}/schemas/ids/{id}"))
        .collect();
    let urls = Arc::new(urls);
    let hello_urls = Arc::new(vec![format!("{hello_base}/hello")]);
    run(&http, &urls, lookups / 10, 1, true).await?;
    let lookup_elapsed = run(&http, &urls, lookups, 1, true).await?;
    run(&http, &hello_urls, lookups / 10, 1, false).await?;
    let hello_elapsed = run(&http, &hello_urls, lookups, 1, false).await?;
    let lookup_conc = run(&http, &urls, lookups, concurrency, true).await?;
    let hello_conc = run(&http, &hello_urls, lookups, concurrency, false).await?;

    let lookups_per_s = lookups as f64 / lookup_elapsed.as_secs_f64();
    let hello_per_s = lookups as f64 / hello_elapsed.as_secs_f64();
    let ratio = lookups_per_s / hello_per_s;
    let lookups_conc_per_s = lookups as f64 / lookup_conc.as_secs_f64();
    let hello_conc_per_s = lookups as f64 / hello_conc.as_secs_f64();
    let ratio_conc = lookups_conc_per_s / hello_conc_per_s;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("registrations: {schemas} in {reg_elapsed:.2?} = {registrations_per_s:.0}/s");
    println!(
        "lookups by id: {lookups} in {lookup_elapsed:.2?} = {lookups_per_s:.0}/s ({:.1} µs each)",
        lookup_elapsed.as_secs_f64() * 1e6 / lookups as f64
    );
    println!(
        "baseline GET /hello: {lookups} in {hello_elapsed:.2?} = {hello_per_s:.0}/s ({:.1} µs each)",
        hello_elapsed.as_secs_f64() * 1e6 / lookups as f64
    );
    println!("ratio lookups / baseline: {ratio:.2}");
    println!(
        "{concurrency} in flight: lookups by id {lookups_conc_per_s:.0}/s, baseline {hello_conc_per_s:.0}/s, ratio {ratio_conc:.2}"
    );
    let best = lookups_per_s.max(lookups_conc_per_s);
    println!(
        "goal ≥ 10000 lookups/s: {} (one at a time: {}; {concurrency} in flight: {})",
        if best >= 10_000.0 { "met" } else { "NOT met" },
        if lookups_per_s >= 10_000.0 {
            "met"
        } else {
            "not met"
        },
        if lookups_conc_per_s >= 10_000.0 {
            "met"
        } else {
            "not met"
        },
    );

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCH.md");
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    if new {
        writeln!(
            f,
            "# Registry benchmark\n\n\
             `cargo run --release -p sluice-schema-registry --example registry_bench -- [schemas] [lookups] [concurrency]`: \
             one keep-alive reqwest client, client and servers in one process (sharing the \
             machine's cores). Lookups are `GET /schemas/ids/{{id}}` cycling over the registered \
             ids, first one request at a time, then `concurrency` in flight. Baseline: a \
             minimal axum handler (`GET /hello`) in the same run; ratio = registry / baseline.\n\n\
             | date (UTC) | profile | cpus | schemas | registrations/s | lookups | lookups by id/s (1 in flight) | baseline req/s | ratio | in flight | lookups by id/s | baseline req/s | ratio |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|"
        )?;
    }
    writeln!(
        f,
        "| {} | {profile} | {cpus} | {schemas} | {registrations_per_s:.0} | {lookups} | {lookups_per_s:.0} | {hello_per_s:.0} | {ratio:.2} | {concurrency} | {lookups_conc_per_s:.0} | {hello_conc_per_s:.0} | {ratio_conc:.2} |",
        utc_now()
    )?;
    println!("appended to {}", path.display());

    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(())
}

/// `count` GETs cycling over `urls`, `concurrency` at a time; checks each answer.
async fn run(
    http: &reqwest::Client,
    urls: &Arc<Vec<String>>,
    count: usize,
    concurrency: usize,
    json: bool,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let concurrency = concurrency.max(1);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (http, urls) = (http.clone(), urls.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < count {
                let url = &urls[i % urls.len()];
                let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
                if !resp.status().is_success() {
                    return Err(format!("GET {url} answered {}", resp.status()));
                }
                let body = resp.bytes().await.map_err(|e| e.to_string())?;
                if json && body.first() != Some(&b'{') {
                    return Err("a lookup answered no JSON object".to_string());
                }
                i += concurrency;
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(t0.elapsed())
}

/// The current UTC time as `YYYY-MM-DD HH:MM`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}
