//! Thin wrappers around the tools that build the lab: `ip`, `nft` and `sysctl`, run either in
//! the root namespace (only `ip netns add/del` and `ip link add ... netns`) or inside one lab
//! namespace. Every failure names the command and quotes its error output.

use anyhow::{bail, Context};
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `prog args...` and returns its standard output; fails with the command line and its
/// standard error if it exits non-zero.
pub fn run(prog: &str, args: &[&str]) -> anyhow::Result<String> {
    run_with_input(prog, args, None)
}

/// Like [`run`], feeding `input` on standard input.
pub fn run_with_input(prog: &str, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    let mut cmd = Command::new(prog);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().with_context(|| format!("cannot run {prog} (is it installed?)"))?;
    if let Some(text) = input {
        child.stdin.take().expect("piped").write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("`{prog} {}` failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n NS args...`.
pub fn ip(ns: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut v = vec!["-n", ns];
    v.extend_from_slice(args);
    run("ip", &v)
}

/// Runs `prog args...` inside namespace `ns` (`ip netns exec`).
pub fn exec(ns: &str, prog: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut v = vec!["netns", "exec", ns, prog];
    v.extend_from_slice(args);
    run("ip", &v)
}

/// Sets sysctls (`key=value`) inside `ns`, in one `sysctl` run.
pub fn sysctl(ns: &str, settings: &[&str]) -> anyhow::Result<()> {
    let mut v = vec!["-q", "-w"];
    v.extend_from_slice(settings);
    exec(ns, "sysctl", &v).map(drop)
}

/// Loads an nftables ruleset (`nft -f -`) inside `ns`.
pub fn nft(ns: &str, ruleset: &str) -> anyhow::Result<()> {
    run_with_input("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(ruleset))
        .with_context(|| format!("loading nftables rules in {ns}:\n{ruleset}"))
        .map(drop)
}

/// Creates namespace `name`.
pub fn add(name: &str) -> anyhow::Result<()> {
    run("ip", &["netns", "add", name]).map(drop)
}

/// Deletes namespace `name`.
pub fn delete(name: &str) -> anyhow::Result<()> {
    run("ip", &["netns", "del", name]).map(drop)
}

/// Creates a veth pair with one end (`a`) in `ns_a` and the other (`b`) in `ns_b`, directly:
/// the names never exist in the root namespace, so parallel labs cannot collide.
pub fn veth(ns_a: &str, a: &str, ns_b: &str, b: &str) -> anyhow::Result<()> {
    run("ip", &["link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b]).map(drop)
}

/// The MAC address of interface `ifname` in `ns`.
pub fn mac(ns: &str, ifname: &str) -> anyhow::Result<String> {
    let out = ip(ns, &["-j", "link", "show", "dev", ifname])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("parsing `ip -j link`")?;
    v.get(0)
        .and_then(|l| l.get("address"))
        .and_then(|a| a.as_str())
        .map(str::to_string)
        .with_context(|| format!("no MAC address for {ifname} in {ns}"))
}

/// The namespaces under /run/netns whose names start with `prefix`.
pub fn list(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    v.retain(|n| n.starts_with(prefix));
    v.sort();
    v
}
