//! Baseline for BENCHMARKS.md: the Rust csv crate's plain deserialising loop over a result CSV,
//! counting rows per (port, probe, class), i.e. the headline GROUP BY and nothing else.
//!
//! `cargo run --release -p mpscan-analysis --example csv_loop -- serde FILE` deserialises every row
//! into an owned struct with serde (the loop the csv crate's tutorial teaches);
//! `... -- borrowed FILE` deserialises into a borrowed struct from a reused `StringRecord`.
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Owned {
    ip: String,
    port: u16,
    probe: String,
    class: String,
    responder: String,
    mptcp_version: Option<u8>,
    mpc_flags: String,
    mpc_key: String,
    options: String,
    mirrored: bool,
    ts_echoed: bool,
    ttl: u8,
    window: u16,
    timestamp: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Borrowed<'a> {
    ip: &'a str,
    port: u16,
    probe: &'a str,
    class: &'a str,
    responder: &'a str,
    mptcp_version: Option<u8>,
    mpc_flags: &'a str,
    mpc_key: &'a str,
    options: &'a str,
    mirrored: bool,
    ts_echoed: bool,
    ttl: u8,
    window: u16,
    timestamp: &'a str,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (mode, path) = match args.as_slice() {
        [_, m, p] => (m.as_str(), p.as_str()),
        _ => return Err("usage: csv_loop serde|borrowed FILE".into()),
    };
    let mut rdr = csv::Reader::from_path(path)?;
    let mut counts: HashMap<(u16, String, String), u64> = HashMap::new();
    let mut rows = 0u64;
    match mode {
        "serde" => {
            for r in rdr.deserialize() {
                let r: Owned = r?;
                *counts.entry((r.port, r.probe, r.class)).or_default() += 1;
                rows += 1;
            }
        }
        "borrowed" => {
            let headers = rdr.headers()?.clone();
            let mut rec = csv::StringRecord::new();
            let mut keys: Vec<(u16, String, String, u64)> = vec![];
            while rdr.read_record(&mut rec)? {
                let r: Borrowed = rec.deserialize(Some(&headers))?;
                rows += 1;
                // Keys borrow from the record: intern them once.
                if let Some(k) = keys.iter_mut().find(|k| k.0 == r.port && k.1 == r.probe && k.2 == r.class) {
                    k.3 += 1;
                } else {
                    keys.push((r.port, r.probe.to_string(), r.class.to_string(), 1));
                }
            }
            for (p, v, c, n) in keys {
                counts.insert((p, v, c), n);
            }
        }
        _ => return Err("mode must be serde or borrowed".into()),
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort();
    for ((port, probe, class), n) in v {
        println!("{port},{probe},{class},{n}");
    }
    eprintln!("rows: {rows}");
    Ok(())
}
