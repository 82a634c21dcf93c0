//! Every row of docs/ERRORS.md, run against the real binary: bad input gets exactly one line on
//! standard error that contains the row's message and names the input, and a non-zero exit.
//!
//! The table is parsed from the document, so the two cannot drift: a new row is tested as soon
//! as it is written. The files of the document's second table are created in an empty
//! directory the commands run in. Scan rows carry `--dry-run` (the test refuses any that does
//! not), so even a missing check could not send a packet.

use std::path::{Path, PathBuf};
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

/// One row of the error table.
#[derive(Debug)]
struct Row {
    input: String,
    /// The first `code` span of the input column: the line must contain it.
    names: String,
    args: Vec<String>,
    message: String,
}

/// The `code` spans of a table cell, in order.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The cells of a Markdown table row (`| a | b |`), or `None` for other lines and separators.
fn cells(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    if !line.starts_with('|') || line.starts_with("|---") {
        return None;
    }
    Some(line.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
}

/// Splits a command on spaces; `""` is an empty argument, `"a b"` one argument.
fn split_args(cmd: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur: Option<String> = None;
    let mut quoted = false;
    for ch in cmd.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.get_or_insert_with(String::new);
            }
            ' ' if !quoted => args.extend(cur.take()),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    args.extend(cur);
    args
}

/// The two tables of the document: error rows, and (file name, content) pairs.
fn parse_doc(text: &str) -> (Vec<Row>, Vec<(String, String)>) {
    let (mut rows, mut files) = (Vec::new(), Vec::new());
    let mut section = "";
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = if h.starts_with("The table") {
                "table"
            } else if h.starts_with("Files") {
                "files"
            } else {
                ""
            };
            continue;
        }
        let Some(c) = cells(line) else { continue };
        match section {
            "table" if c.len() == 4 && c[0] != "input" => {
                let names =
                    code_spans(&c[0]).into_iter().next().unwrap_or_else(|| panic!("row without an input span: {line}"));
                let cmd =
                    code_spans(&c[1]).into_iter().next().unwrap_or_else(|| panic!("row without a command: {line}"));
                let message =
                    code_spans(&c[2]).into_iter().next().unwrap_or_else(|| panic!("row without a message: {line}"));
                rows.push(Row { input: c[0].clone(), names, args: split_args(&cmd), message });
            }
            "files" if c.len() == 2 && c[0] != "file" => {
                let content = code_spans(&c[1]).into_iter().next().unwrap_or_default();
                files.push((c[0].clone(), content.replace("\\n", "\n")));
            }
            _ => {}
        }
    }
    (rows, files)
}

/// The bytes of a file of the table: its content, or for `hex:...` (a binary file such as a
/// pcap recording) the bytes its hex digits spell.
fn file_bytes(content: &str) -> Vec<u8> {
    match content.strip_prefix("hex:") {
        None => content.as_bytes().to_vec(),
        Some(h) => (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex in {content}")))
            .collect(),
    }
}

fn workdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpscan-cli-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs one row; returns what is wrong with it, if anything.
fn check(row: &Row, dir: &Path) -> Option<String> {
    if matches!(row.args.first().map(String::as_str), Some("scan" | "trace"))
        && !row.args.iter().any(|a| a == "--dry-run")
    {
        return Some("a scan or trace row must carry --dry-run".into());
    }
    let out = Command::new(EXE).args(&row.args).current_dir(dir).output().expect("running mpscan");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let code = out.status.code();
    let mut problems = Vec::new();
    if out.status.success() || code.is_none() {
        problems.push(format!("exit status {:?}, expected an error", out.status));
    }
    if lines.len() != 1 {
        problems.push(format!("{} lines on stderr, expected 1", lines.len()));
    }
    let line = lines.first().copied().unwrap_or("");
    if !line.starts_with("mpscan: ") {
        problems.push("the line does not start with `mpscan: `".into());
    }
    // Exit 2 for a command line clap rejects, 1 for a value mpscan checked (docs/ERRORS.md).
    let expect_code = if line.ends_with("(see --help)") { 2 } else { 1 };
    if code.is_some() && code != Some(expect_code) {
        problems.push(format!("exit code {code:?}, expected {expect_code}"));
    }
    if !line.contains(&row.message) {
        problems.push(format!("the line does not contain the message {:?}", row.message));
    }
    if !line.contains(&row.names) {
        problems.push(format!("the line does not name the input {:?}", row.names));
    }
    if !out.stdout.is_empty() {
        problems.push(format!("{} bytes on stdout (a dry run printed probes?)", out.stdout.len()));
    }
    (!problems.is_empty()).then(|| format!("{}\n    stderr: {stderr:?}", problems.join("; ")))
}

#[test]
fn every_row_of_the_error_table() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ERRORS.md");
    let text = std::fs::read_to_string(&doc).expect("docs/ERRORS.md");
    let (rows, files) = parse_doc(&text);
    // The parser found the tables (a broken parser must not pass with nothing to check).
    assert!(rows.len() >= 35, "only {} rows parsed from {}", rows.len(), doc.display());
    assert!(files.len() >= 8, "only {} files parsed", files.len());
    let dir = workdir();
    for (name, content) in &files {
        std::fs::write(dir.join(name), file_bytes(content)).unwrap();
    }
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|r| check(r, &dir).map(|why| format!("{} (mpscan {}): {why}", r.input, r.args.join(" "))))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{} of {} rows fail:\n  {}", failures.len(), rows.len(), failures.join("\n  "));
}

#[test]
fn the_table_parser_reads_what_it_should() {
    let (rows, files) = parse_doc(
        "## The table\n\n| input | command | message (part of the line) | fix |\n|---|---|---|---|\n\
         | port `\"0\"` | `scan --dry-run -p 0 \"\" x` | `port 0 cannot` | 1 to 65535 |\n\n\
         ## Files the commands use\n\n| file | content |\n|---|---|\n| a.txt | `x\\ny` |\n",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].names, "\"0\"");
    assert_eq!(rows[0].args, ["scan", "--dry-run", "-p", "0", "", "x"]);
    assert_eq!(rows[0].message, "port 0 cannot");
    assert_eq!(files, vec![("a.txt".to_string(), "x\ny".to_string())]);
    assert_eq!(file_bytes("hex:d4c30a"), [0xd4, 0xc3, 0x0a]);
    assert_eq!(file_bytes("x\ny"), b"x\ny");
}
