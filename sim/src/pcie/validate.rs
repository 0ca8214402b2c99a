//! The trace validator: every rule a real trace obeys, checked in one streaming pass.
//!
//! Rules: completions match an outstanding request by requester ID and tag and their byte
//! counts add up ([`Rule::Unmatched`], [`Rule::ByteCount`]); nothing answers before it is asked
//! ([`Rule::Causality`] for completions, and the NIC chain doorbell -> descriptor read ->
//! descriptor completion -> data read -> data completions -> write-back -> MSI); payloads within
//! MPS, requests within MRRS, no 4 KB crossing ([`Rule::Mps`], [`Rule::Mrrs`], [`Rule::Cross4k`]);
//! ordering ([`Rule::Ordering`]: split completions in address order ending on read completion
//! boundaries, completions carrying their request's attributes, no relaxed ordering on an MSI,
//! which must not pass the writes it announces); tags within the pool and reused only after
//! completion ([`Rule::Tag`]); credit limits against the advertised credits and the UpdateFC
//! rows ([`Rule::Credits`]).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::tlp::{crosses_4k, tag_pool, Dir, Kind, Tlp, ATTR_RO};
use super::trace::{NicPlace, TraceMeta};

/// A rule of the validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A completion with no outstanding request of its requester ID and tag.
    Unmatched,
    /// A completion's byte count or length disagrees with what its request still awaits.
    ByteCount,
    /// Something answers before it is asked: a completion before its request, or a step of the
    /// NIC chain before the step it depends on.
    Causality,
    /// A payload larger than the maximum payload size.
    Mps,
    /// A read request larger than the maximum read request size.
    Mrrs,
    /// A request crossing a 4 KB boundary.
    Cross4k,
    /// An ordering violation.
    Ordering,
    /// A tag outside the pool, or reused while its request is outstanding.
    Tag,
    /// More credits consumed than advertised and returned.
    Credits,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 9] = [
        Rule::Unmatched,
        Rule::ByteCount,
        Rule::Causality,
        Rule::Mps,
        Rule::Mrrs,
        Rule::Cross4k,
        Rule::Ordering,
        Rule::Tag,
        Rule::Credits,
    ];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Unmatched => "unmatched-completion",
            Rule::ByteCount => "byte-count",
            Rule::Causality => "causality",
            Rule::Mps => "payload>MPS",
            Rule::Mrrs => "request>MRRS",
            Rule::Cross4k => "4KB-crossing",
            Rule::Ordering => "ordering",
            Rule::Tag => "tag",
            Rule::Credits => "credits",
        }
    }
}

/// One violation.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Line of the offending row.
    pub line: usize,
    /// Rule broken.
    pub rule: Rule,
    /// What exactly.
    pub message: String,
}

/// The result of validating a trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Rows checked.
    pub rows: u64,
    /// Violations per rule.
    pub counts: Vec<(Rule, u64)>,
    /// The first violations (up to the validator's limit), in line order.
    pub violations: Vec<Violation>,
    /// Checks skipped for lack of metadata.
    pub skipped: Vec<&'static str>,
}

impl Report {
    /// Total violations.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.1).sum()
    }

    /// Violations of `rule`.
    pub fn count(&self, rule: Rule) -> u64 {
        self.counts.iter().find(|c| c.0 == rule).map_or(0, |c| c.1)
    }
}

/// Multiply-shift hashing for the (requester, tag) keys.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Fast<V> = HashMap<u32, V, BuildHasherDefault<KeyHasher>>;

struct Pending {
    line: usize,
    next: u64,
    left: u32,
    attr: u8,
    /// NIC: what the read fetches (descriptor or data), for which device and slot.
    nic: Option<(bool, u32, u32)>,
}

#[derive(Default, Clone, Copy)]
struct Slot {
    desc_done: bool,
    data_left: u64,
    data_asked: bool,
    written_back: bool,
}

#[derive(Default, Clone)]
struct Nic {
    doorbells: u64,
    desc_reads: u64,
    write_backs: u64,
    msis: u64,
    slots: Vec<Slot>,
}

/// The streaming validator: feed rows in order with [`Validator::check`], then
/// [`Validator::finish`].
pub struct Validator {
    meta: TraceMeta,
    pool: u16,
    tag0: u16,
    pending: Fast<Pending>,
    /// Completions that matched nothing yet: (requester, tag) -> (line, address).
    orphans: Fast<(usize, u64)>,
    credits: Fast<[i64; 3]>,
    nic: Vec<Nic>,
    counts: HashMap<Rule, u64>,
    violations: Vec<Violation>,
    limit: usize,
    rows: u64,
}

fn key(requester: u16, tag: u16) -> u32 {
    (requester as u32) << 16 | tag as u32
}

impl Validator {
    /// A validator for traces described by `meta`, keeping the first `limit` violations.
    pub fn new(meta: &TraceMeta, limit: usize) -> Validator {
        let pool = tag_pool(meta.tag_bits).unwrap_or(768);
        let nic = meta.nic.map_or(Vec::new(), |n| {
            vec![
                Nic {
                    slots: vec![Slot::default(); n.slots as usize],
                    ..Nic::default()
                };
                n.devices as usize
            ]
        });
        Validator {
            meta: *meta,
            pool,
            tag0: if meta.tag_bits == 10 { 256 } else { 0 },
            pending: Fast::default(),
            orphans: Fast::default(),
            credits: Fast::default(),
            nic,
            counts: HashMap::new(),
            violations: Vec::new(),
            limit,
            rows: 0,
        }
    }

    fn flag(&mut self, line: usize, rule: Rule, message: impl FnOnce() -> String) {
        *self.counts.entry(rule).or_insert(0) += 1;
        if self.violations.len() < self.limit {
            self.violations.push(Violation {
                line,
                rule,
                message: message(),
            });
        }
    }

    /// Checks one row.
    pub fn check(&mut self, line: usize, t: &Tlp) {
        self.rows += 1;
        let m = self.meta;
        match t.kind {
            Kind::MRd | Kind::MWr | Kind::Msg => self.request(line, t),
            Kind::CplD | Kind::Cpl => self.completion(line, t),
            Kind::FcP | Kind::FcNp => {
                if let Some(c) = self.credits.get_mut(&(t.requester as u32)) {
                    let i = if t.kind == Kind::FcP { 0 } else { 2 };
                    c[i] += t.byte_count as i64;
                    if i == 0 {
                        c[1] += t.length as i64;
                    }
                }
            }
        }
        if (t.kind == Kind::MWr || t.kind == Kind::CplD) && t.length > m.mps {
            self.flag(line, Rule::Mps, || {
                format!(
                    "{} payload of {} B exceeds MPS {}",
                    t.kind.name(),
                    t.length,
                    m.mps
                )
            });
        }
    }

    fn request(&mut self, line: usize, t: &Tlp) {
        let m = self.meta;
        if t.kind == Kind::MRd && t.length > m.mrrs {
            self.flag(line, Rule::Mrrs, || {
                format!("MRd of {} B exceeds MRRS {}", t.length, m.mrrs)
            });
        }
        if t.kind != Kind::Msg && crosses_4k(t.address, t.length) {
            self.flag(line, Rule::Cross4k, || {
                format!(
                    "{} [{:#x}, +{}) crosses a 4 KB boundary",
                    t.kind.name(),
                    t.address,
                    t.length
                )
            });
        }
        // Credits the device consumes toward the host.
        if let (Some((ph, pd, nph)), Dir::Up) = (m.credits, t.dir) {
            let c = self
                .credits
                .entry(t.requester as u32)
                .or_insert([ph as i64, pd as i64, nph as i64]);
            let (infinite_p, infinite_np) = (ph == 0 || pd == 0, nph == 0);
            if t.kind == Kind::MRd {
                c[2] -= 1;
                if !infinite_np && c[2] < 0 {
                    let have = c[2] + 1;
                    self.flag(line, Rule::Credits, || {
                        format!("MRd needs a non-posted header credit; {have} left")
                    });
                }
            } else {
                c[0] -= 1;
                c[1] -= t.length.div_ceil(16) as i64;
                if !infinite_p && (c[0] < 0 || c[1] < 0) {
                    let (h, d) = (c[0], c[1]);
                    self.flag(line, Rule::Credits, || {
                        format!("posted request overdraws the host's credits: {h} header, {d} data credits after it")
                    });
                }
            }
        }
        if t.kind == Kind::MRd {
            let tag_ok = t.tag >= self.tag0 && t.tag < self.tag0 + self.pool;
            if !tag_ok {
                let (lo, hi) = (self.tag0, self.tag0 + self.pool - 1);
                self.flag(line, Rule::Tag, || {
                    format!(
                        "tag {} outside the {}-bit pool {lo}..={hi}",
                        t.tag, m.tag_bits
                    )
                });
            }
            let k = key(t.requester, t.tag);
            if let Some(p) = self.pending.get(&k) {
                let prev = p.line;
                self.flag(line, Rule::Tag, || {
                    format!("tag {} of requester {:#06x} reused while the read on line {prev} is outstanding", t.tag, t.requester)
                });
            }
            if let Some((oline, _)) = self.orphans.remove(&k) {
                self.flag(oline, Rule::Causality, || {
                    format!("completion answers the read on line {line} before it was asked")
                });
            }
            let nic = self.nic_read(line, t);
            self.pending.insert(
                k,
                Pending {
                    line,
                    next: t.address,
                    left: t.length,
                    attr: t.attr,
                    nic,
                },
            );
        } else if t.kind == Kind::MWr {
            self.nic_write(line, t);
        }
    }

    fn completion(&mut self, line: usize, t: &Tlp) {
        let k = key(t.requester, t.tag);
        let rcb = self.meta.rcb as u64;
        let Some(p) = self.pending.get_mut(&k) else {
            self.orphans.insert(k, (line, t.address));
            return;
        };
        let (next, left, attr, rline) = (p.next, p.left, p.attr, p.line);
        let mut problems: Vec<(Rule, String)> = Vec::new();
        if t.byte_count != left {
            problems.push((
                Rule::ByteCount,
                format!(
                    "byte count {} but the read on line {rline} awaits {left} B",
                    t.byte_count
                ),
            ));
        }
        if t.length > left || (t.kind == Kind::CplD && t.length == 0) {
            problems.push((
                Rule::ByteCount,
                format!(
                    "{} B returned but the read on line {rline} awaits {left} B",
                    t.length
                ),
            ));
        }
        if t.address != 0 && t.address != next {
            problems.push((
                Rule::Ordering,
                format!("completion of the bytes at {:#x} arrived before those at {next:#x} (read on line {rline})", t.address),
            ));
        } else if t.lower_addr as u64 != next & 0x7f {
            problems.push((
                Rule::Ordering,
                format!(
                    "lower address {:#x}, expected {:#x}: completions of one read out of order",
                    t.lower_addr,
                    next & 0x7f
                ),
            ));
        }
        let end = next + t.length as u64;
        if t.length < left && !end.is_multiple_of(rcb) {
            problems.push((
                Rule::Ordering,
                format!(
                    "partial completion ends at {end:#x}, not on a {rcb}-byte completion boundary"
                ),
            ));
        }
        if t.attr != attr {
            problems.push((
                Rule::Ordering,
                format!("attributes {} differ from the request's {attr}", t.attr),
            ));
        }
        let got = t.length.min(left);
        p.next += got as u64;
        p.left -= got;
        let done = p.left == 0;
        let nic = p.nic;
        if done {
            self.pending.remove(&k);
        }
        if let Some((desc, d, slot)) = nic {
            let s = &mut self.nic[d as usize].slots[slot as usize];
            if desc {
                s.desc_done |= done;
            } else {
                s.data_left = s.data_left.saturating_sub(got as u64);
            }
        }
        for (rule, msg) in problems {
            self.flag(line, rule, || msg);
        }
    }

    /// NIC chain for a read: which descriptor or packet buffer it fetches.
    fn nic_read(&mut self, line: usize, t: &Tlp) -> Option<(bool, u32, u32)> {
        let n = self.meta.nic?;
        match n.classify(t.dir, t.address)? {
            (NicPlace::Desc(slot), d) => {
                let nic = &mut self.nic[d as usize];
                nic.desc_reads += 1;
                nic.slots[slot as usize] = Slot::default();
                if nic.desc_reads > nic.doorbells {
                    let (r, b) = (nic.desc_reads, nic.doorbells);
                    self.flag(line, Rule::Causality, || {
                        format!("device {d}: descriptor read #{r} after only {b} doorbells")
                    });
                }
                Some((true, d, slot))
            }
            (NicPlace::Buf(slot), d) => {
                let s = &mut self.nic[d as usize].slots[slot as usize];
                let ok = s.desc_done;
                s.data_left += t.length as u64;
                s.data_asked = true;
                if !ok {
                    self.flag(line, Rule::Causality, || {
                        format!(
                            "device {d}: packet read of slot {slot} before its descriptor arrived"
                        )
                    });
                }
                Some((false, d, slot))
            }
            _ => None,
        }
    }

    /// NIC chain for a write: doorbell, write-back, MSI.
    fn nic_write(&mut self, line: usize, t: &Tlp) {
        let Some(n) = self.meta.nic else { return };
        match n.classify(t.dir, t.address) {
            Some((NicPlace::Doorbell, d)) => self.nic[d as usize].doorbells += 1,
            Some((NicPlace::Cq(slot), d)) => {
                let nic = &mut self.nic[d as usize];
                let s = nic.slots[slot as usize];
                nic.slots[slot as usize].written_back = true;
                nic.write_backs += 1;
                if !(s.desc_done && s.data_asked && s.data_left == 0) {
                    self.flag(line, Rule::Causality, || {
                        format!(
                            "device {d}: write-back of slot {slot} before its packet data arrived"
                        )
                    });
                }
            }
            Some((NicPlace::Msi, d)) => {
                if t.attr & ATTR_RO != 0 {
                    self.flag(line, Rule::Ordering, || {
                        "MSI with relaxed ordering may pass the writes it announces".into()
                    });
                }
                let nic = &mut self.nic[d as usize];
                nic.msis += 1;
                if nic.msis > nic.write_backs {
                    let (m, w) = (nic.msis, nic.write_backs);
                    self.flag(line, Rule::Causality, || {
                        format!("device {d}: MSI #{m} after only {w} write-backs")
                    });
                }
            }
            _ => {}
        }
    }

    /// Ends the trace: unanswered orphans become violations; the report.
    pub fn finish(mut self) -> Report {
        let mut orphans: Vec<(usize, u64)> = self.orphans.drain().map(|(_, v)| v).collect();
        orphans.sort_unstable();
        for (line, addr) in orphans {
            self.flag(line, Rule::Unmatched, || {
                format!("completion at {addr:#x} matches no outstanding request")
            });
        }
        let mut skipped = Vec::new();
        if self.meta.credits.is_none() {
            skipped.push("credits (no `# credits` metadata)");
        }
        if self.meta.nic.is_none() {
            skipped.push("NIC causality chain (no `# nic` metadata)");
        }
        self.violations.sort_by_key(|v| v.line);
        let mut counts: Vec<(Rule, u64)> = self.counts.into_iter().collect();
        counts.sort();
        Report {
            rows: self.rows,
            counts,
            violations: self.violations,
            skipped,
        }
    }
}

/// Validates rows (with their line numbers).
pub fn validate(meta: &TraceMeta, rows: &[(usize, Tlp)], limit: usize) -> Report {
    let mut v = Validator::new(meta, limit);
    for (line, t) in rows {
        v.check(*line, t);
    }
    v.finish()
}
