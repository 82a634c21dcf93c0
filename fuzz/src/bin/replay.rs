//! Prints what the receive path makes of each input file: `TARGET OUTCOME DETAIL PATH`, where
//! TARGET is `frame` or `syn_ack` (taken from the file's directory name). Used to pick
//! interesting inputs from a fuzzing corpus for fuzz/regressions/ (named `OUTCOME--what`).
//! With `REPLAY_ROWS=1` it also prints each row's CSV record.
use mpscan_fuzz::harness::{self, Outcome};

fn main() {
    let ctx = harness::context();
    for arg in std::env::args().skip(1) {
        let path = std::path::Path::new(&arg);
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{arg}: {e}"));
        let structured = path.parent().and_then(|p| p.file_name()).is_some_and(|n| n == "syn_ack");
        let outcome = if structured {
            harness::structured(&ctx, &data).unwrap_or(Outcome::Rejected("not-a-recipe"))
        } else {
            harness::frame(&ctx, &data)
        };
        let (what, detail) = match &outcome {
            Outcome::Rejected(why) => ("rejected".to_string(), why.to_string()),
            Outcome::Row(c, csv) => {
                (c.label().to_string(), csv.trim_end().rsplit(',').next().unwrap_or("").to_string())
            }
        };
        let target = if structured { "syn_ack" } else { "frame" };
        let detail = if detail.is_empty() { "-" } else { &detail };
        match (&outcome, std::env::var_os("REPLAY_ROWS")) {
            (Outcome::Row(_, csv), Some(_)) => println!("{target} {what} {detail} {arg} {}", csv.trim_end()),
            _ => println!("{target} {what} {detail} {arg}"),
        }
    }
}
