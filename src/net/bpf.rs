//! The capture filter: a classic BPF program, written by hand, that lets through only frames
//! that can be answers to our probes.
//!
//! At a few hundred thousand probes a second the receive side must not copy every frame on the
//! interface to userspace, so the kernel runs this program on each frame first
//! (`SO_ATTACH_FILTER`). It accepts, on untagged Ethernet only:
//!
//! * IPv4 TCP, not a later fragment, whose destination port lies in the scan's source-port range
//!   and whose flags have SYN or RST set;
//! * IPv4 ICMP errors about a datagram: destination unreachable (3), source quench (4),
//!   redirect (5), time exceeded (11), parameter problem (12) (the receiver decides which end a
//!   probe: [`crate::wire::icmp::effect`]);
//! * IPv6 TCP with the same port and flag test, when the next header is directly TCP (6);
//! * ICMPv6 destination unreachable (1), packet too big (2), time exceeded (3), parameter
//!   problem (4) and redirect (137), when the next header is directly ICMPv6 (58).
//!
//! IPv6 extension headers are not followed: a response carrying one is dropped, which costs at
//! most a few answers and keeps the program short.
//!
//! The program is built with a tiny assembler ([`Asm`]) with named instructions and symbolic
//! jump labels, and proved by running it through [`run`], an interpreter of the subset it uses,
//! over sample frames in the unit tests (no root needed). The kernel's own verifier checks it
//! again when it is attached.

use std::collections::HashMap;
use std::ops::RangeInclusive;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode: class | size | mode (loads) or class | op | source (jumps).
    pub code: u16,
    /// Relative jump when the condition holds.
    pub jt: u8,
    /// Relative jump when the condition fails.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

// Opcode pieces from linux/filter.h (bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_MSH: u16 = 0xa0;
const BPF_IMM: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;

/// How many bytes of an accepted frame the kernel keeps: all of it (tcpdump's default).
pub const ACCEPT_LEN: u32 = 262_144;

/// A jump destination in [`Asm`]: the next instruction, or a named label defined later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Fall through to the next instruction (offset 0).
    Next,
    /// A label placed later with [`Asm::label`].
    Label(&'static str),
}

use Target::{Label, Next};

/// A jump whose offsets are still symbolic.
#[derive(Debug, Clone, Copy)]
struct Pending {
    code: u16,
    k: u32,
    jt: Target,
    jf: Target,
}

/// Why a program could not be assembled (a bug in the program text, not in input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsmError {
    /// A jump names a label never placed.
    UnknownLabel(&'static str),
    /// A jump goes backwards or to itself (classic BPF only jumps forwards).
    BackwardJump(&'static str),
    /// A jump is longer than 255 instructions.
    JumpTooFar(&'static str),
    /// A label was placed twice.
    DuplicateLabel(&'static str),
}

impl std::fmt::Display for AsmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AsmError::UnknownLabel(l) => write!(f, "BPF jump to unknown label '{l}'"),
            AsmError::BackwardJump(l) => write!(f, "BPF jump to label '{l}' does not go forwards"),
            AsmError::JumpTooFar(l) => {
                write!(f, "BPF jump to label '{l}' is longer than 255 instructions")
            }
            AsmError::DuplicateLabel(l) => write!(f, "BPF label '{l}' placed twice"),
        }
    }
}

impl std::error::Error for AsmError {}

/// A tiny classic-BPF assembler: named instructions, forward jumps to named labels.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Pending>,
    labels: HashMap<&'static str, usize>,
}

impl Asm {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, code: u16, k: u32) -> &mut Self {
        self.insns.push(Pending { code, k, jt: Next, jf: Next });
        self
    }

    fn jump(&mut self, op: u16, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.insns.push(Pending { code: BPF_JMP | op | BPF_K, k, jt, jf });
        self
    }

    /// Places `name` at the next instruction. A label placed twice is reported by [`Asm::finish`].
    pub fn label(&mut self, name: &'static str) -> &mut Self {
        if self.labels.insert(name, self.insns.len()).is_some() {
            // Remember the mistake as a jump that can never resolve; finish() reports it.
            self.labels.insert("\0dup", 0);
            self.insns.push(Pending { code: u16::MAX, k: 0, jt: Label(name), jf: Next });
        }
        self
    }

    /// `ldh [k]`: A = big-endian u16 at frame offset k.
    pub fn ldh(&mut self, k: u32) -> &mut Self {
        self.push(BPF_LD | BPF_H | BPF_ABS, k)
    }

    /// `ldb [k]`: A = byte at frame offset k.
    pub fn ldb(&mut self, k: u32) -> &mut Self {
        self.push(BPF_LD | BPF_B | BPF_ABS, k)
    }

    /// `ld [k]`: A = big-endian u32 at frame offset k.
    pub fn ld(&mut self, k: u32) -> &mut Self {
        self.push(BPF_LD | BPF_W | BPF_ABS, k)
    }

    /// `ldh [x + k]`: A = big-endian u16 at frame offset X + k.
    pub fn ldh_x(&mut self, k: u32) -> &mut Self {
        self.push(BPF_LD | BPF_H | BPF_IND, k)
    }

    /// `ldb [x + k]`: A = byte at frame offset X + k.
    pub fn ldb_x(&mut self, k: u32) -> &mut Self {
        self.push(BPF_LD | BPF_B | BPF_IND, k)
    }

    /// `ldxb 4*([k]&0xf)`: X = IPv4 header length read from the IHL nibble at offset k.
    pub fn ldx_msh(&mut self, k: u32) -> &mut Self {
        self.push(BPF_LDX | BPF_B | BPF_MSH, k)
    }

    /// `ldx #k`: X = k.
    pub fn ldx_imm(&mut self, k: u32) -> &mut Self {
        self.push(BPF_LDX | BPF_W | BPF_IMM, k)
    }

    /// `jeq #k, jt, jf`.
    pub fn jeq(&mut self, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.jump(BPF_JEQ, k, jt, jf)
    }

    /// `jgt #k, jt, jf` (unsigned A > k).
    pub fn jgt(&mut self, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.jump(BPF_JGT, k, jt, jf)
    }

    /// `jge #k, jt, jf` (unsigned A >= k).
    pub fn jge(&mut self, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.jump(BPF_JGE, k, jt, jf)
    }

    /// `jeq` against each of `ks` in turn: to `hit` on the first equal, to `miss` if none is.
    pub fn jeq_any(&mut self, ks: &[u32], hit: Target, miss: Target) -> &mut Self {
        for (i, &k) in ks.iter().enumerate() {
            self.jeq(k, hit, if i + 1 == ks.len() { miss } else { Next });
        }
        self
    }

    /// `jset #k, jt, jf` (A & k != 0).
    pub fn jset(&mut self, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.jump(BPF_JSET, k, jt, jf)
    }

    /// `ret #k`: accept k bytes of the frame (0 drops it).
    pub fn ret(&mut self, k: u32) -> &mut Self {
        self.push(BPF_RET | BPF_K, k)
    }

    /// Resolves labels into relative offsets.
    pub fn finish(&self) -> Result<Vec<SockFilter>, AsmError> {
        let resolve = |at: usize, t: Target| -> Result<u8, AsmError> {
            match t {
                Next => Ok(0),
                Label(name) => {
                    let dest = *self.labels.get(name).ok_or(AsmError::UnknownLabel(name))?;
                    if dest <= at {
                        return Err(AsmError::BackwardJump(name));
                    }
                    u8::try_from(dest - at - 1).map_err(|_| AsmError::JumpTooFar(name))
                }
            }
        };
        self.insns
            .iter()
            .enumerate()
            .map(|(at, p)| {
                if p.code == u16::MAX {
                    let Label(name) = p.jt else { unreachable!("only duplicate markers use u16::MAX") };
                    return Err(AsmError::DuplicateLabel(name));
                }
                Ok(SockFilter { code: p.code, jt: resolve(at, p.jt)?, jf: resolve(at, p.jf)?, k: p.k })
            })
            .collect()
    }
}

// Frame offsets (untagged Ethernet).
const ETHERTYPE: u32 = 12;
/// Where the IP header starts, either family.
const L3: u32 = 14;
const IP4: u32 = L3;
const IP4_PROTO: u32 = IP4 + 9;
const IP4_FRAG: u32 = IP4 + 6;
const IP6: u32 = L3;
const IP6_NEXT: u32 = IP6 + 6;
const IP6_PAYLOAD: u32 = IP6 + 40;
const TCP_DPORT: u32 = 2;
const TCP_FLAGS: u32 = 13;
const TCP_SYN_OR_RST: u32 = 0x02 | 0x04;
/// ICMP types passed: unreachable, source quench, redirect, time exceeded, parameter problem.
const ICMP4_TYPES: [u32; 5] = [3, 4, 5, 11, 12];
/// ICMPv6 types passed: unreachable, packet too big, time exceeded, parameter problem, redirect.
const ICMP6_TYPES: [u32; 5] = [1, 2, 3, 4, 137];

/// The capture filter for a scan whose probes leave from source ports `dst_ports` (the answers'
/// destination ports). See the module documentation for what it accepts.
pub fn filter_for(dst_ports: RangeInclusive<u16>) -> Vec<SockFilter> {
    let (lo, hi) = (u32::from(*dst_ports.start()), u32::from(*dst_ports.end()));
    let mut a = Asm::new();
    a.ldh(ETHERTYPE)
        .jeq(0x0800, Next, Label("not4"))
        // IPv4: drop later fragments (no transport header); X = the header length (IHL).
        .ldh(IP4_FRAG)
        .jset(0x1fff, Label("drop"), Next)
        .ldx_msh(IP4)
        .ldb(IP4_PROTO)
        .jeq(6, Label("tcp"), Next)
        .jeq(1, Next, Label("drop"))
        .ldb_x(L3)
        .jeq_any(&ICMP4_TYPES, Label("accept"), Label("drop"))
        // IPv6: fixed 40-byte header, next header read directly; X = 40.
        .label("not4")
        .jeq(0x86dd, Next, Label("drop"))
        .ldx_imm(40)
        .ldb(IP6_NEXT)
        .jeq(6, Label("tcp"), Next)
        .jeq(58, Next, Label("drop"))
        .ldb(IP6_PAYLOAD)
        .jeq_any(&ICMP6_TYPES, Label("accept"), Label("drop"))
        // TCP of either family, at L3 + X: a destination port in range and SYN or RST set.
        .label("tcp")
        .ldh_x(L3 + TCP_DPORT)
        .jge(lo, Next, Label("drop"))
        .jgt(hi, Label("drop"), Next)
        .ldb_x(L3 + TCP_FLAGS)
        .jset(TCP_SYN_OR_RST, Label("accept"), Label("drop"))
        .label("accept")
        .ret(ACCEPT_LEN)
        .label("drop")
        .ret(0);
    a.finish().expect("the capture filter's labels are all defined and forward")
}

/// Why the interpreter stopped without a `ret` (a malformed program; the kernel verifier would
/// refuse it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// An opcode outside the subset [`run`] understands.
    Unsupported { pc: usize, code: u16 },
    /// Execution ran off the end of the program.
    FellOff,
}

/// Runs `prog` over `frame` like the kernel would and returns how many bytes it keeps
/// (0 = drop). Understands the subset [`Asm`] emits. A load beyond the end of the frame drops
/// the frame, as in the kernel.
pub fn run(prog: &[SockFilter], frame: &[u8]) -> Result<u32, RunError> {
    let load = |off: u64, size: usize| -> Option<u32> {
        let off = usize::try_from(off).ok()?;
        let bytes = frame.get(off..off.checked_add(size)?)?;
        Some(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    };
    let (mut a, mut x) = (0u32, 0u32);
    let mut pc = 0usize;
    while let Some(i) = prog.get(pc) {
        let (class, size, mode) = (i.code & 0x07, i.code & 0x18, i.code & 0xe0);
        let width = match size {
            BPF_W => 4,
            BPF_H => 2,
            BPF_B => 1,
            _ => 0,
        };
        match (class, mode) {
            (BPF_LD, BPF_ABS | BPF_IND) if width > 0 => {
                let base = if mode == BPF_IND { u64::from(x) } else { 0 };
                match load(base + u64::from(i.k), width) {
                    Some(v) => a = v,
                    None => return Ok(0),
                }
            }
            (BPF_LDX, BPF_MSH) if size == BPF_B => match load(u64::from(i.k), 1) {
                Some(v) => x = (v & 0xf) * 4,
                None => return Ok(0),
            },
            (BPF_LDX, BPF_IMM) if size == BPF_W => x = i.k,
            (BPF_JMP, _) if i.code & 0x08 == BPF_K => {
                let cond = match i.code & 0xf0 {
                    BPF_JEQ => a == i.k,
                    BPF_JGT => a > i.k,
                    BPF_JGE => a >= i.k,
                    BPF_JSET => a & i.k != 0,
                    _ => return Err(RunError::Unsupported { pc, code: i.code }),
                };
                pc += usize::from(if cond { i.jt } else { i.jf });
            }
            (BPF_RET, _) if i.code == BPF_RET | BPF_K => return Ok(i.k),
            _ => return Err(RunError::Unsupported { pc, code: i.code }),
        }
        pc += 1;
    }
    Err(RunError::FellOff)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTS: RangeInclusive<u16> = 40000..=40999;

    /// Ethernet header + IPv4 header (20 bytes, or more with `ihl` > 5) + `l4`.
    fn ip4(proto: u8, ihl: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let hl = usize::from(ihl) * 4;
        let mut ip = vec![0u8; hl];
        ip[0] = 0x40 | ihl;
        ip[2..4].copy_from_slice(&((hl + l4.len()) as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&[192, 0, 2, 1]);
        ip[16..20].copy_from_slice(&[192, 0, 2, 2]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        f
    }

    fn ip6(next: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x86, 0xdd]);
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
        ip[6] = next;
        ip[7] = 64;
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        f
    }

    fn tcp(dport: u16, flags: u8) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&443u16.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        t
    }

    fn icmp(ty: u8) -> Vec<u8> {
        let mut m = vec![ty, 13, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0x45; 28]);
        m
    }

    fn accepts(frame: &[u8]) -> bool {
        run(&filter_for(PORTS), frame).expect("filter runs") != 0
    }

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const RST: u8 = 0x04;
    const FIN: u8 = 0x01;

    #[test]
    fn ipv4_tcp_answers_in_range_pass() {
        assert!(accepts(&ip4(6, 5, 0, &tcp(40000, SYN | ACK))));
        assert!(accepts(&ip4(6, 5, 0, &tcp(40999, SYN | ACK))));
        assert!(accepts(&ip4(6, 5, 0, &tcp(40500, RST | ACK))));
        assert!(accepts(&ip4(6, 5, 0, &tcp(40500, RST))));
        // IPv4 options move the TCP header: the filter follows IHL.
        assert!(accepts(&ip4(6, 7, 0, &tcp(40500, SYN | ACK))));
        // Don't-fragment bit set is fine.
        assert!(accepts(&ip4(6, 5, 0x4000, &tcp(40500, SYN | ACK))));
    }

    #[test]
    fn ipv4_tcp_others_dropped() {
        assert!(!accepts(&ip4(6, 5, 0, &tcp(39999, SYN | ACK))));
        assert!(!accepts(&ip4(6, 5, 0, &tcp(41000, SYN | ACK))));
        assert!(!accepts(&ip4(6, 5, 0, &tcp(40500, ACK))));
        assert!(!accepts(&ip4(6, 5, 0, &tcp(40500, FIN | ACK))));
        // A later fragment: the bytes where the ports would be are payload.
        assert!(!accepts(&ip4(6, 5, 0x0001, &tcp(40500, SYN | ACK))));
        // IHL pushes the port out of range of the bytes we mutated: still judged on real offsets.
        let mut opts = ip4(6, 6, 0, &tcp(50000, SYN | ACK));
        opts[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&40500u16.to_be_bytes()); // in the options
        assert!(!accepts(&opts));
    }

    #[test]
    fn ipv4_icmp_errors_only() {
        for t in [3, 4, 5, 11, 12] {
            assert!(accepts(&ip4(1, 5, 0, &icmp(t))), "type {t}");
            // IPv4 options before the ICMP header: the filter follows IHL.
            assert!(accepts(&ip4(1, 6, 0, &icmp(t))), "type {t} after IP options");
        }
        for t in [0, 1, 2, 6, 8, 9, 10, 13, 14, 255] {
            assert!(!accepts(&ip4(1, 5, 0, &icmp(t))), "type {t}");
        }
        assert!(!accepts(&ip4(17, 5, 0, &tcp(40500, SYN))));
    }

    #[test]
    fn ipv6_answers() {
        assert!(accepts(&ip6(6, &tcp(40000, SYN | ACK))));
        assert!(accepts(&ip6(6, &tcp(40999, RST))));
        assert!(!accepts(&ip6(6, &tcp(41000, SYN | ACK))));
        assert!(!accepts(&ip6(6, &tcp(40500, ACK))));
        for t in [1, 2, 3, 4, 137] {
            assert!(accepts(&ip6(58, &icmp(t))), "ICMPv6 type {t}");
        }
        for t in [0, 5, 11, 12, 128, 129, 133, 134, 135, 136] {
            assert!(!accepts(&ip6(58, &icmp(t))), "ICMPv6 type {t}");
        }
        // Extension header before TCP (hop-by-hop = 0): not followed, dropped.
        assert!(!accepts(&ip6(0, &tcp(40500, SYN | ACK))));
    }

    #[test]
    fn other_frames_dropped() {
        // VLAN-tagged IPv4 TCP SYN-ACK.
        let mut vlan = ip4(6, 5, 0, &tcp(40500, SYN | ACK));
        vlan.splice(12..12, [0x81, 0x00, 0x00, 0x01]);
        assert!(!accepts(&vlan));
        // ARP.
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!accepts(&arp));
        assert!(!accepts(&[]));
    }

    #[test]
    fn truncated_frames_dropped_without_panic() {
        let full = ip4(6, 5, 0, &tcp(40500, SYN | ACK));
        for len in 0..full.len() {
            // Up to the flags byte the frame cannot pass; after it, it must.
            let expect = len > 14 + 20 + 13;
            assert_eq!(accepts(&full[..len]), expect, "len {len}");
        }
        let full6 = ip6(6, &tcp(40500, SYN | ACK));
        for len in 0..full6.len() {
            assert_eq!(accepts(&full6[..len]), len > 14 + 40 + 13, "len {len}");
        }
    }

    #[test]
    fn single_port_range() {
        let prog = filter_for(443..=443);
        assert_ne!(run(&prog, &ip4(6, 5, 0, &tcp(443, SYN | ACK))).unwrap(), 0);
        assert_eq!(run(&prog, &ip4(6, 5, 0, &tcp(444, SYN | ACK))).unwrap(), 0);
        assert_eq!(run(&prog, &ip4(6, 5, 0, &tcp(442, SYN | ACK))).unwrap(), 0);
    }

    #[test]
    fn accepted_frames_kept_whole() {
        assert_eq!(run(&filter_for(PORTS), &ip4(6, 5, 0, &tcp(40500, SYN | ACK))), Ok(ACCEPT_LEN));
    }

    #[test]
    fn assembler_resolves_and_rejects() {
        let mut a = Asm::new();
        a.ldb(0).jeq(1, Label("yes"), Next).ret(0).label("yes").ret(1);
        let p = a.finish().unwrap();
        assert_eq!(p[1], SockFilter { code: 0x15, jt: 1, jf: 0, k: 1 });
        assert_eq!(run(&p, &[1]), Ok(1));
        assert_eq!(run(&p, &[2]), Ok(0));

        let mut bad = Asm::new();
        bad.jeq(1, Label("nowhere"), Next).ret(0);
        assert_eq!(bad.finish(), Err(AsmError::UnknownLabel("nowhere")));

        let mut back = Asm::new();
        back.label("top").jeq(1, Label("top"), Next).ret(0);
        assert_eq!(back.finish(), Err(AsmError::BackwardJump("top")));

        let mut far = Asm::new();
        far.jeq(1, Label("end"), Next);
        for _ in 0..300 {
            far.ret(0);
        }
        far.label("end").ret(1);
        assert_eq!(far.finish(), Err(AsmError::JumpTooFar("end")));

        let mut dup = Asm::new();
        dup.label("x").ret(0).label("x").ret(1);
        assert_eq!(dup.finish(), Err(AsmError::DuplicateLabel("x")));
    }

    #[test]
    fn opcodes_match_tcpdump() {
        // `tcpdump -dd` spellings of the instructions the filter uses.
        let mut a = Asm::new();
        a.ldh(12).ldb(23).ld(26).ldx_msh(14).ldh_x(16).ldb_x(27).ldx_imm(40);
        a.jeq(0x800, Next, Next).jgt(1, Next, Next).jge(1, Next, Next).jset(0x1fff, Next, Next).ret(0);
        let codes: Vec<u16> = a.finish().unwrap().iter().map(|i| i.code).collect();
        assert_eq!(codes, vec![0x28, 0x30, 0x20, 0xb1, 0x48, 0x50, 0x01, 0x15, 0x25, 0x35, 0x45, 0x06]);
    }

    #[test]
    fn interpreter_rejects_unknown_and_fall_off() {
        let p = [SockFilter { code: 0x04, jt: 0, jf: 0, k: 0 }]; // ALU add
        assert_eq!(run(&p, &[0]), Err(RunError::Unsupported { pc: 0, code: 0x04 }));
        let p = [SockFilter { code: 0x30, jt: 0, jf: 0, k: 0 }];
        assert_eq!(run(&p, &[0]), Err(RunError::FellOff));
    }

    proptest::proptest! {
        #[test]
        fn random_frames_never_error(frame in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let r = run(&filter_for(PORTS), &frame);
            proptest::prop_assert!(r == Ok(0) || r == Ok(ACCEPT_LEN));
        }
    }
}
