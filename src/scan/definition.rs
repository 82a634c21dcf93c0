//! Scan definitions: a scan written down as a TOML file (`scans/NAME.toml`), so that every vantage
//! machine of a sharded scan runs exactly the same scan:
//!
//! ```sh
//! mpscan scan --config scans/rwth2018-443.toml --shards 4 --shard 2   # on machine 2 of 4
//! ```
//!
//! A definition names what the command line would: `targets`, `ports`, `rate`, `versions`,
//! `seed`, `blocklist`, `allowlist`, `shards`, `probes`, `cooldown`, `send_error_grace`,
//! `sender_threads`, `output`, `metadata`, `output_format`, `ipv6`, `contact`, plus a `name` and a `description`.
//! Rules:
//!
//! * A flag given on the command line wins over the file (`--config scans/lab.toml -r 5000`).
//!   Targets given on the command line replace the file's.
//! * The shard index (`--shard`) comes only from the command line: the file is the same on
//!   every machine.
//! * `output` and `metadata` are patterns: `{name}`, `{shard}`, `{shards}` and `{ext}` (`csv` or
//!   `parquet`) are filled in (`output = "{name}-{shard}-of-{shards}.{ext}"`). A dry run ignores
//!   them (it prints probes, not results).
//! * `${VAR}` in any string is replaced by the environment variable `VAR` (an error if unset):
//!   `scans/lab.toml` finds the lab's files with `${MPSCAN_LAB}`.
//! * `blocklist = "builtin"` is the shipped IANA list, `"none"` no list (the full-space check
//!   still wants `--i-know-what-i-am-doing` on the command line), anything else a file.
//! * Unknown keys are errors (a misspelt `rates = ...` must not silently scan at the default).
//!
//! The definition (its path and its values) is recorded in the scan's metadata.

use super::args::{ScanArgs, VersionArg};
use crate::output::sink::OutputFormat;
use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Ports in a definition: `443`, `"80,443"`, `"8000-8100"` or `[80, 443]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PortsValue {
    /// One port.
    One(u16),
    /// A port spec as on the command line.
    Spec(String),
    /// A list of ports.
    List(Vec<u16>),
}

impl PortsValue {
    /// The command-line spelling (`80,443`).
    pub fn spec(&self) -> String {
        match self {
            PortsValue::One(p) => p.to_string(),
            PortsValue::Spec(s) => s.clone(),
            PortsValue::List(v) => v.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
        }
    }
}

/// A scan definition as written in its TOML file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Short name, used in output names (`{name}`).
    pub name: String,
    /// What the scan measures (free text; recorded in the metadata).
    #[serde(default)]
    pub description: Option<String>,
    /// Targets as on the command line: prefixes, addresses, `@FILE`.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Ports.
    pub ports: PortsValue,
    /// Packets per second.
    #[serde(default)]
    pub rate: Option<u64>,
    /// MP_CAPABLE versions: `"0"`, `"1"` or `"both"`.
    #[serde(default)]
    pub versions: Option<String>,
    /// Seed of the permutation and validation secret: every shard must use the same one.
    #[serde(default)]
    pub seed: Option<u64>,
    /// `"builtin"`, `"none"` or a file.
    #[serde(default)]
    pub blocklist: Option<String>,
    /// An allowlist file.
    #[serde(default)]
    pub allowlist: Option<String>,
    /// Number of shards (machines) the scan is split into.
    #[serde(default)]
    pub shards: Option<u32>,
    /// Probes per target and version.
    #[serde(default)]
    pub probes: Option<u32>,
    /// Seconds to keep receiving after the last probe.
    #[serde(default)]
    pub cooldown: Option<f64>,
    /// Seconds to wait for the link when sending fails (`--send-error-grace`).
    #[serde(default)]
    pub send_error_grace: Option<f64>,
    /// Sender threads.
    #[serde(default)]
    pub sender_threads: Option<u32>,
    /// Result file pattern.
    #[serde(default)]
    pub output: Option<String>,
    /// Metadata file pattern.
    #[serde(default)]
    pub metadata: Option<String>,
    /// `csv` or `parquet`.
    #[serde(default)]
    pub output_format: Option<OutputFormat>,
    /// Every target must be IPv6 (a hitlist scan).
    #[serde(default)]
    pub ipv6: Option<bool>,
    /// Who runs the scan.
    #[serde(default)]
    pub contact: Option<String>,
}

/// What the metadata records about the definition a scan ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefinitionRecord {
    /// The file, as given.
    pub path: String,
    /// Its values (after `${VAR}` expansion).
    pub values: Definition,
    /// The command-line flags that overrode it.
    pub overridden: Vec<String>,
}

impl Definition {
    /// Reads and checks `path`. Errors name the file and, where TOML knows it, the line.
    pub fn load(path: &Path) -> anyhow::Result<Definition> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the scan definition {}", path.display()))?;
        Definition::parse(&text, &path.display().to_string())
    }

    /// Parses a definition's text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Definition> {
        let mut d: Definition = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("scan definition {origin}: {}", e.to_string().trim().replace('\n', " ")))?;
        d.expand_env(origin)?;
        if d.name.is_empty() || !d.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            bail!(
                "scan definition {origin}: name {:?} must be letters, digits, '-', '_' or '.' (it names files)",
                d.name
            );
        }
        if let Some(v) = &d.versions {
            if !["0", "1", "both"].contains(&v.as_str()) {
                bail!("scan definition {origin}: versions = {v:?}: write \"0\", \"1\" or \"both\"");
            }
        }
        if d.shards == Some(0) {
            bail!("scan definition {origin}: shards = 0: there must be at least one shard");
        }
        Ok(d)
    }

    /// Replaces `${VAR}` in every string value.
    fn expand_env(&mut self, origin: &str) -> anyhow::Result<()> {
        let exp = |key: &str, s: &mut String| -> anyhow::Result<()> {
            *s = expand_env(s).map_err(|var| {
                anyhow::anyhow!("scan definition {origin}: {key} uses ${{{var}}}, which is not set: export {var}=...")
            })?;
            Ok(())
        };
        for t in &mut self.targets {
            exp("targets", t)?;
        }
        for (key, v) in [
            ("blocklist", &mut self.blocklist),
            ("allowlist", &mut self.allowlist),
            ("output", &mut self.output),
            ("metadata", &mut self.metadata),
            ("contact", &mut self.contact),
        ] {
            if let Some(s) = v {
                exp(key, s)?;
            }
        }
        Ok(())
    }

    /// Fills an output pattern: `{name}`, `{shard}`, `{shards}`, `{ext}`.
    pub fn fill(&self, pattern: &str, shard: u32, shards: u32, format: OutputFormat) -> String {
        pattern
            .replace("{name}", &self.name)
            .replace("{shard}", &shard.to_string())
            .replace("{shards}", &shards.to_string())
            .replace("{ext}", format.extension())
    }
}

/// `${VAR}` replaced from the environment; the name of the first unset variable otherwise.
fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let var = &after[..j];
        out.push_str(&std::env::var(var).map_err(|_| var.to_string())?);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Applies the definition named by `a.config` (if any) to `a`: every field whose flag
/// `given(id)` says was not typed on the command line takes the definition's value. `id` is the
/// clap id of the flag (the field name). Records the definition in `a.definition`.
pub fn apply(a: &mut ScanArgs, given: &dyn Fn(&str) -> bool) -> anyhow::Result<()> {
    let Some(path) = a.config.clone() else { return Ok(()) };
    let d = Definition::load(&path)?;
    let origin = path.display().to_string();
    let mut overridden = Vec::new();
    // Takes the definition's value (bound to `$v`) unless the flag was typed.
    macro_rules! take {
        ($id:literal, $def:expr, $v:ident => $set:expr) => {
            if let Some($v) = $def {
                if given($id) {
                    overridden.push($id.to_string());
                } else {
                    $set;
                }
            }
        };
    }
    if !d.targets.is_empty() {
        if given("targets") {
            overridden.push("targets".into());
        } else {
            a.targets = d.targets.clone();
        }
    }
    if a.targets.is_empty() {
        bail!("scan definition {origin} names no targets: add targets = [...] or give them on the command line");
    }
    take!("port", Some(d.ports.spec()), v => a.port = v);
    take!("rate", d.rate, v => a.rate = v);
    take!(
        "mptcp_version",
        d.versions.as_deref(),
        v => a.mptcp_version = match v {
            "0" => VersionArg::V0,
            "1" => VersionArg::V1,
            _ => VersionArg::Both,
        }
    );
    take!("seed", d.seed, v => a.seed = Some(v));
    if let Some(b) = &d.blocklist {
        if given("blocklist") || given("no_blocklist") {
            overridden.push("blocklist".into());
        } else {
            match b.as_str() {
                "builtin" => (a.blocklist, a.no_blocklist) = (None, false),
                "none" => (a.blocklist, a.no_blocklist) = (None, true),
                p => (a.blocklist, a.no_blocklist) = (Some(PathBuf::from(p)), false),
            }
        }
    }
    take!("allowlist", d.allowlist.clone(), v => a.allowlist = Some(v.into()));
    take!("shards", d.shards, v => a.shards = v);
    take!("probes", d.probes, v => a.probes = v);
    take!("cooldown", d.cooldown, v => a.cooldown = v);
    take!("send_error_grace", d.send_error_grace, v => a.send_error_grace = v);
    take!("sender_threads", d.sender_threads, v => a.sender_threads = v);
    take!("output_format", d.output_format, v => a.output_format = v);
    take!("ipv6", d.ipv6, v => a.ipv6 = v);
    take!("contact", d.contact.clone(), v => a.contact = Some(v));
    if !a.dry_run {
        let (shard, shards, fmt) = (a.shard, a.shards, a.output_format);
        take!("output", d.output.as_deref(), v => a.output = Some(d.fill(v, shard, shards, fmt).into()));
        take!("metadata", d.metadata.as_deref(), v => a.metadata = Some(d.fill(v, shard, shards, fmt).into()));
    }
    a.definition = Some(serde_json::to_value(DefinitionRecord { path: origin, values: d, overridden })?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ScanArgs,
    }

    /// Parses a command line as `mpscan scan` does and applies its `--config`.
    fn scan_args(argv: &[&str]) -> anyhow::Result<ScanArgs> {
        let m = T::command().try_get_matches_from(std::iter::once("scan").chain(argv.iter().copied()))?;
        let mut a = T::from_arg_matches(&m)?.a;
        apply(&mut a, &|id| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))?;
        Ok(a)
    }

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mpscan-def-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const DEF: &str = r#"
        name = "t443"
        description = "a test"
        targets = ["198.51.100.0/24"]
        ports = [80, 443]
        rate = 500
        versions = "both"
        seed = 2018
        blocklist = "none"
        shards = 4
        cooldown = 3.5
        send_error_grace = 300
        output = "{name}-{shard}-of-{shards}.{ext}"
        metadata = "{name}-{shard}-of-{shards}.json"
    "#;

    #[test]
    fn definition_fills_what_the_command_line_leaves_out() {
        let p = write("a.toml", DEF);
        let a = scan_args(&["--config", p.to_str().unwrap(), "--shard", "2"]).unwrap();
        assert_eq!(a.targets, ["198.51.100.0/24"]);
        assert_eq!((a.port.as_str(), a.rate, a.mptcp_version, a.seed), ("80,443", 500, VersionArg::Both, Some(2018)));
        assert_eq!((a.shards, a.shard, a.cooldown, a.no_blocklist), (4, 2, 3.5, true));
        assert_eq!(a.send_error_grace, 300.0);
        assert_eq!(a.output.as_deref(), Some(Path::new("t443-2-of-4.csv")));
        assert_eq!(a.metadata.as_deref(), Some(Path::new("t443-2-of-4.json")));
        let rec = a.definition.unwrap();
        assert_eq!(rec["values"]["seed"], 2018);
        assert_eq!(rec["overridden"], serde_json::json!([]));
    }

    #[test]
    fn command_line_wins() {
        let p = write("b.toml", DEF);
        let a = scan_args(&[
            "--config",
            p.to_str().unwrap(),
            "-r",
            "7",
            "-p",
            "22",
            "-b",
            "/x/bl.txt",
            "--output-format",
            "parquet",
            "-e",
            "5",
            "192.0.2.0/28",
        ])
        .unwrap();
        assert_eq!((a.rate, a.port.as_str(), a.seed), (7, "22", Some(5)));
        assert_eq!(a.targets, ["192.0.2.0/28"]);
        assert_eq!((a.blocklist.as_deref(), a.no_blocklist), (Some(Path::new("/x/bl.txt")), false));
        assert_eq!(a.output.as_deref(), Some(Path::new("t443-0-of-4.parquet")));
        let over = a.definition.unwrap()["overridden"].clone();
        for k in ["targets", "port", "rate", "seed", "blocklist"] {
            assert!(over.as_array().unwrap().iter().any(|v| v == k), "{k} not in {over}");
        }
    }

    #[test]
    fn dry_run_ignores_output_patterns_and_no_config_changes_nothing() {
        let p = write("c.toml", DEF);
        let a = scan_args(&["--config", p.to_str().unwrap(), "--dry-run"]).unwrap();
        assert_eq!((a.output, a.metadata), (None, None));
        let a = scan_args(&["-p", "443", "198.51.100.1"]).unwrap();
        assert!(a.definition.is_none());
        assert_eq!(a.rate, 10_000);
    }

    #[test]
    fn bad_definitions_are_one_line_errors() {
        for (text, want) in [
            ("name = \"x\"\nports = 443\nrates = 5\n", "rates"),
            ("name = \"x\"\nports = 443\nversions = \"2\"\n", "versions"),
            ("name = \"a b\"\nports = 443\n", "name"),
            ("ports = 443\n", "name"),
            ("name = \"x\"\nports = 443\nshards = 0\n", "shards = 0"),
            ("name = \"x\"\nports = 443\nseed = -1\n", "seed"),
            (
                "name = \"x\"\nports = 443\ntargets = [\"@${MPSCAN_SURELY_UNSET_VAR}/t.txt\"]\n",
                "MPSCAN_SURELY_UNSET_VAR",
            ),
            ("name = \"x\"\nports = 443\nrate = \n", "x.toml"),
        ] {
            let e = Definition::parse(text, "x.toml").err().unwrap_or_else(|| panic!("{text:?} parsed"));
            let msg = e.to_string();
            assert!(msg.contains(want) && !msg.contains('\n'), "{text:?}: {msg}");
        }
        let p = write("notargets.toml", "name = \"x\"\nports = 443\n");
        let e = scan_args(&["--config", p.to_str().unwrap()]).err().unwrap();
        assert!(e.to_string().contains("names no targets"), "{e}");
        let e = scan_args(&["--config", "/nonexistent/x.toml"]).err().unwrap();
        assert!(e.to_string().contains("/nonexistent/x.toml"), "{e}");
    }

    #[test]
    fn env_expansion() {
        std::env::set_var("MPSCAN_DEF_TEST_DIR", "/run/lab");
        assert_eq!(expand_env("@${MPSCAN_DEF_TEST_DIR}/targets.txt").unwrap(), "@/run/lab/targets.txt");
        assert_eq!(expand_env("plain").unwrap(), "plain");
        assert_eq!(expand_env("${unterminated").unwrap(), "${unterminated");
        assert_eq!(expand_env("${MPSCAN_NOPE_NOT_SET}").unwrap_err(), "MPSCAN_NOPE_NOT_SET");
    }

    #[test]
    fn shipped_definitions_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scans");
        std::env::set_var("MPSCAN_LAB", "/run/mpscan-lab/x");
        std::env::set_var("MPSCAN_HITLIST6", "/data/hitlist.txt");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let d = Definition::load(&p).unwrap_or_else(|e| panic!("{e:#}"));
                assert!(
                    d.description.as_deref().is_some_and(|s| s.len() > 40),
                    "{}: describe what it measures",
                    p.display()
                );
                assert!(d.seed.is_some(), "{}: shards need a fixed seed", p.display());
                n += 1;
            }
        }
        assert!(n >= 4, "{n} definitions in scans/");
    }
}
