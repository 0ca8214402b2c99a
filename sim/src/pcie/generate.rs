//! Trace generation: a statistical sequence model learned from a reference trace, sampled in
//! constant memory, with an optional constraint layer (masked sampling plus repair) under which
//! every generated trace validates; and the fidelity metrics that compare a trace with its
//! reference.
//!
//! The model sees each row as a token — direction, type, and the address region it touches
//! (for NIC traces: doorbell, descriptor ring, packet buffers, completion ring, MSI) — and
//! learns: the next token given the two before (backing off to one and none); per token the
//! payload lengths, the address strides from the previous row of the same token, requester,
//! attributes and traffic class; per token pair the inter-arrival times. Unconstrained, it
//! samples every field from these. Constrained, it masks the tokens the protocol state forbids
//! (a completion with nothing outstanding, a read with no free tag or credit, a NIC step before
//! its cause), builds completions from the oldest outstanding read (splitting at read
//! completion boundaries), takes tags from a free pool, and repairs sizes and addresses (MPS,
//! MRRS, the 4 KB boundary, ring slots).

use std::collections::{HashMap, VecDeque};

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::engine::TraceSink;
use super::tlp::{split_completions, tag_pool, to_4k, Dir, Kind, Tlp};
use super::trace::{NicPlace, TraceMeta};
use super::PcieError;

const REGIONS: usize = 7;
const TOKENS: usize = 2 * 7 * REGIONS;
const RESERVOIR: usize = 4096;

/// Address regions of a NIC trace (`Other` for everything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    Other = 0,
    Doorbell = 1,
    TxRing = 2,
    PktBuf = 3,
    CqRing = 4,
    Msi = 5,
    /// Another device's rings (left out of generation).
    Outside = 6,
}

fn region(meta: &TraceMeta, t: &Tlp) -> Region {
    let Some(n) = meta.nic else {
        return Region::Other;
    };
    if !(t.kind == Kind::MRd || t.kind == Kind::MWr) {
        return Region::Other;
    }
    match n.classify(t.dir, t.address) {
        // The generator models device 0's rings; other devices' rows count as plain traffic.
        Some((p, 0)) => match p {
            NicPlace::Doorbell => Region::Doorbell,
            NicPlace::Desc(_) => Region::TxRing,
            NicPlace::Buf(_) => Region::PktBuf,
            NicPlace::Cq(_) => Region::CqRing,
            NicPlace::Msi => Region::Msi,
        },
        Some(_) => Region::Outside,
        None => Region::Other,
    }
}

fn token(meta: &TraceMeta, t: &Tlp) -> usize {
    let k = Kind::ALL.iter().position(|k| *k == t.kind).unwrap_or(0);
    ((t.dir == Dir::Down) as usize * 7 + k) * REGIONS + region(meta, t) as usize
}

fn untoken(tok: usize) -> (Dir, Kind, usize) {
    let r = tok % REGIONS;
    let k = (tok / REGIONS) % 7;
    let dir = if tok / REGIONS / 7 == 1 {
        Dir::Down
    } else {
        Dir::Up
    };
    (dir, Kind::ALL[k], r)
}

/// A bounded uniform sample of a stream (Algorithm R).
#[derive(Debug, Clone, Default)]
struct Reservoir<T> {
    items: Vec<T>,
    seen: u64,
}

impl<T: Copy> Reservoir<T> {
    fn add(&mut self, v: T, rng: &mut ChaCha8Rng) {
        self.seen += 1;
        if self.items.len() < RESERVOIR {
            self.items.push(v);
        } else {
            let j = rng.random_range(0..self.seen);
            if (j as usize) < RESERVOIR {
                self.items[j as usize] = v;
            }
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Option<T> {
        if self.items.is_empty() {
            None
        } else {
            Some(self.items[rng.random_range(0..self.items.len())])
        }
    }
}

#[derive(Debug, Clone, Default)]
struct TokenModel {
    lengths: Reservoir<u32>,
    counts: Reservoir<u32>,
    strides: Reservoir<i64>,
    first_addr: Option<u64>,
    requester: HashMap<u16, u64>,
    attr: HashMap<u8, u64>,
    tc: HashMap<u8, u64>,
    tags: Reservoir<u16>,
    /// The most frequent requester, attributes and traffic class (set after learning).
    top: (u16, u8, u8),
}

fn mode<K: Copy + Ord + Default>(m: &HashMap<K, u64>) -> K {
    m.iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map_or(K::default(), |(k, _)| *k)
}

/// The learned model.
#[derive(Debug, Clone)]
pub struct TraceModel {
    meta: TraceMeta,
    order0: Vec<u64>,
    order1: HashMap<usize, Vec<u64>>,
    order2: HashMap<(usize, usize), Vec<u64>>,
    tokens: Vec<TokenModel>,
    gaps: HashMap<(usize, usize), Reservoir<f64>>,
    gaps_any: Reservoir<f64>,
    packet_bytes: Reservoir<u32>,
    rows: u64,
}

impl TraceModel {
    /// Learns from reference rows described by `meta` (at least 100 rows).
    pub fn learn(meta: &TraceMeta, rows: &[Tlp], seed: u64) -> Result<TraceModel, PcieError> {
        if rows.len() < 100 {
            return Err(PcieError::Reference(format!(
                "{} rows; at least 100 are needed",
                rows.len()
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut m = TraceModel {
            meta: *meta,
            order0: vec![0; TOKENS],
            order1: HashMap::new(),
            order2: HashMap::new(),
            tokens: vec![TokenModel::default(); TOKENS],
            gaps: HashMap::new(),
            gaps_any: Reservoir::default(),
            packet_bytes: Reservoir::default(),
            rows: rows.len() as u64,
        };
        // NIC traces: bytes each packet reads between its descriptor and its write-back.
        let mut per_slot: HashMap<u32, u64> = HashMap::new();
        let mut last_addr: Vec<Option<u64>> = vec![None; TOKENS];
        let (mut p2, mut p1): (Option<usize>, Option<usize>) = (None, None);
        let mut last_t = rows[0].time_ns;
        for t in rows {
            if let Some(n) = meta.nic {
                match n.classify(t.dir, t.address) {
                    Some((NicPlace::Buf(s), 0)) if t.kind == Kind::MRd => {
                        *per_slot.entry(s).or_default() += t.length as u64
                    }
                    Some((NicPlace::Cq(s), 0)) if t.kind == Kind::MWr => {
                        if let Some(b) = per_slot.remove(&s) {
                            m.packet_bytes.add(b.min(u32::MAX as u64) as u32, &mut rng);
                        }
                    }
                    _ => {}
                }
            }
            let tok = token(meta, t);
            m.order0[tok] += 1;
            if let Some(a) = p1 {
                m.order1.entry(a).or_insert_with(|| vec![0; TOKENS])[tok] += 1;
                if let Some(b) = p2 {
                    m.order2.entry((b, a)).or_insert_with(|| vec![0; TOKENS])[tok] += 1;
                }
                let gap = t.time_ns - last_t;
                m.gaps.entry((a, tok)).or_default().add(gap, &mut rng);
                m.gaps_any.add(gap, &mut rng);
            }
            last_t = t.time_ns;
            let tm = &mut m.tokens[tok];
            tm.lengths.add(t.length, &mut rng);
            tm.counts.add(t.byte_count, &mut rng);
            tm.tags.add(t.tag, &mut rng);
            match last_addr[tok] {
                Some(prev) => tm
                    .strides
                    .add(t.address.wrapping_sub(prev) as i64, &mut rng),
                None => tm.first_addr = Some(t.address),
            }
            last_addr[tok] = Some(t.address);
            *tm.requester.entry(t.requester).or_default() += 1;
            *tm.attr.entry(t.attr).or_default() += 1;
            *tm.tc.entry(t.tc).or_default() += 1;
            p2 = p1;
            p1 = Some(tok);
        }
        for tm in &mut m.tokens {
            tm.top = (mode(&tm.requester), mode(&tm.attr), mode(&tm.tc));
        }
        Ok(m)
    }

    /// Rows the model learned from.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

#[derive(Clone, Copy)]
struct Outstanding {
    dir: Dir,
    requester: u16,
    tag: u16,
    next: u64,
    left: u32,
    attr: u8,
    tc: u8,
    nic: Option<(bool, usize)>,
}

#[derive(Clone, Copy, Default)]
struct SlotState {
    desc_done: bool,
    data_asked: bool,
    data_left: u64,
    offset: u64,
    size: u64,
    written_back: bool,
}

/// Streams `rows` generated rows into `sink`; `constrained` switches the constraint layer on.
/// Memory stays bounded by the tag pool and the ring, whatever `rows` is.
pub fn generate(
    model: &TraceModel,
    rows: u64,
    constrained: bool,
    seed: u64,
    sink: &mut dyn TraceSink,
) {
    Generator::new(model, constrained, seed).run(rows, sink);
}

struct Generator<'m> {
    m: &'m TraceModel,
    constrained: bool,
    rng: ChaCha8Rng,
    time: f64,
    p1: Option<usize>,
    p2: Option<usize>,
    last_addr: Vec<Option<u64>>,
    free_tags: HashMap<u16, VecDeque<u16>>,
    outstanding: VecDeque<Outstanding>,
    credits: HashMap<u16, [i64; 3]>,
    owed: HashMap<u16, [i64; 3]>,
    doorbells: u64,
    desc_reads: u64,
    write_backs: u64,
    msis: u64,
    slots: Vec<SlotState>,
}

impl<'m> Generator<'m> {
    fn new(m: &'m TraceModel, constrained: bool, seed: u64) -> Self {
        Generator {
            m,
            constrained,
            rng: ChaCha8Rng::seed_from_u64(seed),
            time: 0.0,
            p1: None,
            p2: None,
            last_addr: vec![None; TOKENS],
            free_tags: HashMap::new(),
            outstanding: VecDeque::new(),
            credits: HashMap::new(),
            owed: HashMap::new(),
            doorbells: 0,
            desc_reads: 0,
            write_backs: 0,
            msis: 0,
            slots: vec![SlotState::default(); m.meta.nic.map_or(0, |n| n.slots as usize)],
        }
    }

    fn run(&mut self, rows: u64, sink: &mut dyn TraceSink) {
        for _ in 0..rows {
            let tok = self.next_token();
            let row = self.build(tok);
            self.gap(tok);
            sink.row(&Tlp {
                time_ns: self.time,
                ..row
            });
            self.p2 = self.p1;
            self.p1 = Some(tok);
        }
    }

    fn gap(&mut self, tok: usize) {
        let g = self
            .p1
            .and_then(|a| self.m.gaps.get(&(a, tok)))
            .and_then(|r| r.sample(&mut self.rng))
            .or_else(|| self.m.gaps_any.sample(&mut self.rng))
            .unwrap_or(0.0);
        self.time += g.max(0.0);
    }

    fn next_token(&mut self) -> usize {
        let ctx2 = self.p2.zip(self.p1).and_then(|k| self.m.order2.get(&k));
        let ctx1 = self.p1.and_then(|k| self.m.order1.get(&k));
        let dists: Vec<&Vec<u64>> = [ctx2, ctx1, Some(&self.m.order0)]
            .into_iter()
            .flatten()
            .collect();
        for dist in dists {
            let weights: Vec<u64> = (0..TOKENS)
                .map(|t| {
                    if dist[t] > 0 && (!self.constrained || self.allowed(t)) {
                        dist[t]
                    } else {
                        0
                    }
                })
                .collect();
            let total: u64 = weights.iter().sum();
            if total == 0 {
                continue;
            }
            let mut u = self.rng.random_range(0..total);
            for (t, w) in weights.iter().enumerate() {
                if u < *w {
                    return t;
                }
                u -= w;
            }
        }
        // Nothing the model knows is allowed now: answer the oldest read, else return credits,
        // else the most frequent token (always allowed when nothing is outstanding).
        if let Some(o) = self.outstanding.front() {
            let cpl = Kind::ALL.iter().position(|k| *k == Kind::CplD).unwrap_or(2);
            return ((o.dir == Dir::Up) as usize * 7 + cpl) * REGIONS;
        }
        (0..TOKENS)
            .filter(|t| self.allowed(*t))
            .max_by_key(|t| self.m.order0[*t])
            .unwrap_or(0)
    }

    fn requester(&self, tok: usize) -> u16 {
        self.m.tokens[tok].top.0
    }

    /// Whether the constraint layer allows token `tok` now.
    fn allowed(&self, tok: usize) -> bool {
        let (dir, kind, r) = untoken(tok);
        let req = self.requester(tok);
        let cred = self.credits.get(&req).copied();
        let meta = &self.m.meta;
        if r == Region::Outside as usize {
            return false;
        }
        match kind {
            Kind::CplD | Kind::Cpl => {
                !self.outstanding.is_empty() && self.outstanding.iter().any(|o| o.left > 0)
            }
            Kind::FcP | Kind::FcNp => {
                let i = if kind == Kind::FcP { 0 } else { 2 };
                self.owed.values().any(|o| o[i] > 0)
            }
            Kind::MRd => {
                let tags_ok = self.free_tags.get(&req).is_none_or(|f| !f.is_empty());
                let cred_ok = dir == Dir::Down
                    || meta.credits.is_none_or(|c| c.2 == 0)
                    || cred.is_none_or(|c| c[2] >= 1);
                let nic_ok = match r {
                    x if x == Region::TxRing as usize => self.desc_reads < self.doorbells,
                    x if x == Region::PktBuf as usize => self.data_slot().is_some(),
                    _ => true,
                };
                tags_ok && cred_ok && nic_ok
            }
            Kind::MWr | Kind::Msg => {
                let cred_ok = dir == Dir::Down
                    || meta.credits.is_none_or(|c| c.0 == 0 || c.1 == 0)
                    || cred.is_none_or(|c| c[0] >= 1 && c[1] >= (meta.mps / 16) as i64);
                let nic_ok = match r {
                    x if x == Region::CqRing as usize => self.write_back_slot().is_some(),
                    x if x == Region::Msi as usize => self.msis < self.write_backs,
                    x if x == Region::Doorbell as usize => {
                        (self.doorbells - self.msis) < self.slots.len() as u64
                    }
                    _ => true,
                };
                cred_ok && nic_ok
            }
        }
    }

    /// The oldest slot whose descriptor arrived and whose packet has not been written back.
    fn data_slot(&self) -> Option<usize> {
        let n = self.slots.len() as u64;
        (self.msis.max(self.write_backs)..self.desc_reads)
            .map(|k| (k % n) as usize)
            .find(|&s| {
                self.slots[s].desc_done
                    && !self.slots[s].written_back
                    && self.slots[s].offset < self.slots[s].size
            })
    }

    fn write_back_slot(&self) -> Option<usize> {
        let n = self.slots.len() as u64;
        (self.write_backs..self.desc_reads)
            .map(|k| (k % n) as usize)
            .next()
            .filter(|&s| {
                let x = self.slots[s];
                x.desc_done
                    && x.data_asked
                    && x.data_left == 0
                    && x.offset >= x.size
                    && !x.written_back
            })
    }

    fn sample_addr(&mut self, tok: usize) -> u64 {
        let tm = &self.m.tokens[tok];
        let a = match self.last_addr[tok] {
            None => tm.first_addr.unwrap_or(0),
            Some(prev) => prev.wrapping_add(tm.strides.sample(&mut self.rng).unwrap_or(0) as u64),
        };
        self.last_addr[tok] = Some(a);
        a
    }

    fn build(&mut self, tok: usize) -> Tlp {
        let (dir, kind, r) = untoken(tok);
        let tm = &self.m.tokens[tok];
        let mut t = Tlp::request(0.0, dir, kind, 0, 0, tm.top.0, 0);
        t.attr = tm.top.1;
        t.tc = tm.top.2;
        t.length = tm.lengths.sample(&mut self.rng).unwrap_or(0);
        let count = tm.counts.sample(&mut self.rng).unwrap_or(0);
        let tag = tm.tags.sample(&mut self.rng).unwrap_or(0);
        if !self.constrained {
            t.address = self.sample_addr(tok);
            t.tag = tag;
            t.byte_count = count;
            if kind.completion() {
                t.lower_addr = (t.address & 0x7f) as u8;
            }
            return t;
        }
        let meta = self.m.meta;
        match kind {
            Kind::CplD | Kind::Cpl => return self.complete(t),
            Kind::FcP | Kind::FcNp => {
                let i = if kind == Kind::FcP { 0 } else { 2 };
                let Some((req, owed)) = self
                    .owed
                    .iter_mut()
                    .filter(|(_, o)| o[i] > 0)
                    .min_by_key(|(k, _)| **k)
                    .map(|(k, o)| (*k, o))
                else {
                    t.length = 0;
                    t.byte_count = 0;
                    return t;
                };
                let h = (count as i64).clamp(1, owed[i]);
                owed[i] -= h;
                let mut dcred = 0;
                if i == 0 {
                    dcred = (t.length as i64).clamp(0, owed[1]);
                    owed[1] -= dcred;
                }
                if let Some(c) = self.credits.get_mut(&req) {
                    c[i] += h;
                    if i == 0 {
                        c[1] += dcred;
                    }
                }
                t.requester = req;
                t.byte_count = h as u32;
                t.length = dcred as u32;
                t.attr = 0;
                return t;
            }
            _ => {}
        }
        t.attr &= if r == Region::Msi as usize { 0 } else { 3 };
        // Address and size, repaired: the NIC's rings and buffers, MPS, MRRS, 4 KB.
        let nic = meta.nic;
        let max = if kind == Kind::MRd {
            meta.mrrs
        } else {
            meta.mps
        };
        t.length = t.length.clamp(if kind == Kind::Msg { 0 } else { 1 }, max);
        let mut nic_read = None;
        match (nic, r) {
            (Some(n), x) if x == Region::TxRing as usize => {
                let slot = (self.desc_reads % n.slots as u64) as usize;
                t.address = n.desc(0, slot as u32);
                t.length = t.length.min(16);
                self.desc_reads += 1;
                self.slots[slot] = SlotState::default();
                nic_read = Some((true, slot));
            }
            (Some(n), x) if x == Region::PktBuf as usize && self.data_slot().is_some() => {
                let slot = self.data_slot().unwrap_or(0);
                let s = &mut self.slots[slot];
                t.address = n.buf(0, slot as u32) + s.offset;
                // The device reads the packet in MRRS-sized requests.
                t.length = (s.size - s.offset).min(meta.mrrs as u64).max(1) as u32;
                nic_read = Some((false, slot));
            }
            (Some(n), x) if x == Region::CqRing as usize && self.write_back_slot().is_some() => {
                let slot = self.write_back_slot().unwrap_or(0);
                t.address = n.cq(0, slot as u32);
                t.length = t.length.min(16);
                self.slots[slot].written_back = true;
                self.write_backs += 1;
            }
            (Some(n), x) if x == Region::Msi as usize => {
                t.address = n.msi_of(0);
                self.msis += 1;
            }
            (Some(_), x) if x == Region::Doorbell as usize => {
                t.address = self.sample_addr(tok);
                self.doorbells += 1;
            }
            _ => t.address = self.sample_addr(tok),
        }
        if region(&meta, &t) as usize != r {
            // A stride left the token's region (a doorbell outside the BAR, a plain write into
            // a ring): restart from the region's first address.
            t.address = self.m.tokens[tok].first_addr.unwrap_or(0);
            self.last_addr[tok] = Some(t.address);
        }
        if kind != Kind::Msg && (t.address % 4096) + t.length as u64 > 4096 {
            let room = to_4k(t.address);
            if room >= t.length as u64 / 2 || nic_read.is_some() {
                t.length = room as u32;
            } else {
                t.address += room;
                self.last_addr[tok] = Some(t.address);
            }
        }
        if let Some((false, slot)) = nic_read {
            let s = &mut self.slots[slot];
            s.offset += t.length as u64;
            s.data_asked = true;
            s.data_left += t.length as u64;
        }
        if dir == Dir::Up {
            if let Some((ph, pd, nph)) = meta.credits {
                let c = self
                    .credits
                    .entry(t.requester)
                    .or_insert([ph as i64, pd as i64, nph as i64]);
                let o = self.owed.entry(t.requester).or_insert([0; 3]);
                if kind == Kind::MRd {
                    c[2] -= 1;
                    o[2] += 1;
                } else {
                    let d = t.length.div_ceil(16) as i64;
                    c[0] -= 1;
                    c[1] -= d;
                    o[0] += 1;
                    o[1] += d;
                }
            }
        }
        if kind == Kind::MRd {
            let pool = tag_pool(meta.tag_bits).unwrap_or(32);
            let tag0 = if meta.tag_bits == 10 { 256 } else { 0 };
            let free = self
                .free_tags
                .entry(t.requester)
                .or_insert_with(|| (tag0..tag0 + pool).collect());
            t.tag = free.pop_front().unwrap_or(tag0);
            self.outstanding.push_back(Outstanding {
                dir,
                requester: t.requester,
                tag: t.tag,
                next: t.address,
                left: t.length,
                attr: t.attr,
                tc: t.tc,
                nic: nic_read,
            });
        }
        t
    }

    /// The next completion of the oldest outstanding read.
    fn complete(&mut self, mut t: Tlp) -> Tlp {
        let meta = self.m.meta;
        let Some(o) = self.outstanding.front_mut() else {
            // Nothing to answer (the fallback never asks for this): an empty UpdateFC.
            return Tlp {
                kind: Kind::FcNp,
                length: 0,
                byte_count: 0,
                ..t
            };
        };
        // The completer's split: read completion boundaries, at most MPS.
        let (addr, n, _) = split_completions(o.next, o.left, meta.rcb, meta.mps)
            .next()
            .unwrap_or((o.next, o.left, o.left));
        t.kind = Kind::CplD;
        t.dir = o.dir.reverse();
        t.address = addr;
        t.length = n;
        t.requester = o.requester;
        t.tag = o.tag;
        t.attr = o.attr;
        t.tc = o.tc;
        t.byte_count = o.left;
        t.lower_addr = (addr & 0x7f) as u8;
        o.next += n as u64;
        o.left -= n;
        let (done, nic, req, tag) = (o.left == 0, o.nic, o.requester, o.tag);
        if let Some((desc, slot)) = nic {
            let s = &mut self.slots[slot];
            if desc {
                s.desc_done |= done;
                if done {
                    // The descriptor tells the packet's size.
                    let size = self.m.packet_bytes.sample(&mut self.rng).unwrap_or(64);
                    self.slots[slot].size = size.max(1) as u64;
                }
            } else {
                s.data_left -= n as u64;
            }
        }
        if done {
            self.outstanding.pop_front();
            self.free_tags.entry(req).or_default().push_back(tag);
        }
        t
    }
}

/// How far a generated trace is from its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Fidelity {
    /// Kolmogorov-Smirnov statistic of payload lengths.
    pub ks_length: f64,
    /// Kolmogorov-Smirnov statistic of inter-arrival times.
    pub ks_gap: f64,
    /// Kolmogorov-Smirnov statistic of log2 |address stride| (per token).
    pub ks_stride: f64,
    /// Wasserstein-1 distance of payload lengths, bytes.
    pub w1_length: f64,
    /// Wasserstein-1 distance of inter-arrival times, ns.
    pub w1_gap: f64,
    /// Total variation distance between the token bigram distributions.
    pub tv_bigram: f64,
    /// Total variation distance between the token trigram distributions.
    pub tv_trigram: f64,
    /// Frechet distance between Gaussians fitted to windowed feature vectors (FID-like).
    pub frechet: f64,
}

/// Rows per window of the Frechet distance.
pub const WINDOW: usize = 256;

struct Features {
    lengths: Vec<f64>,
    gaps: Vec<f64>,
    strides: Vec<f64>,
    bigrams: HashMap<(usize, usize), f64>,
    trigrams: HashMap<(usize, usize, usize), f64>,
    windows: Vec<Vec<f64>>,
}

/// Per window: the share of each direction and kind, mean and spread of log2 length and of
/// log2 inter-arrival time, and the share of rows that touch a NIC region.
fn features(meta: &TraceMeta, rows: &[Tlp]) -> Features {
    let mut f = Features {
        lengths: Vec::with_capacity(rows.len()),
        gaps: Vec::with_capacity(rows.len()),
        strides: Vec::new(),
        bigrams: HashMap::new(),
        trigrams: HashMap::new(),
        windows: Vec::new(),
    };
    let toks: Vec<usize> = rows.iter().map(|t| token(meta, t)).collect();
    let mut last: Vec<Option<u64>> = vec![None; TOKENS];
    for (i, t) in rows.iter().enumerate() {
        f.lengths.push(t.length as f64);
        if i > 0 {
            f.gaps.push(t.time_ns - rows[i - 1].time_ns);
            *f.bigrams.entry((toks[i - 1], toks[i])).or_default() += 1.0;
        }
        if i > 1 {
            *f.trigrams
                .entry((toks[i - 2], toks[i - 1], toks[i]))
                .or_default() += 1.0;
        }
        if let Some(p) = last[toks[i]] {
            f.strides.push(
                ((t.address as i64).wrapping_sub(p as i64).unsigned_abs() as f64 + 1.0).log2(),
            );
        }
        last[toks[i]] = Some(t.address);
    }
    for w in rows.chunks_exact(WINDOW) {
        let mut v = vec![0.0; 14 + 5];
        let (mut ll, mut ll2, mut lg, mut lg2, mut nic) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (j, t) in w.iter().enumerate() {
            let k = Kind::ALL.iter().position(|k| *k == t.kind).unwrap_or(0);
            v[(t.dir == Dir::Down) as usize * 7 + k] += 1.0 / WINDOW as f64;
            let l = (t.length as f64 + 1.0).log2();
            ll += l;
            ll2 += l * l;
            if j > 0 {
                let g = (w[j].time_ns - w[j - 1].time_ns + 1.0).log2();
                lg += g;
                lg2 += g * g;
            }
            nic += (region(meta, t) != Region::Other) as u32 as f64;
        }
        let n = WINDOW as f64;
        v[14] = ll / n;
        v[15] = (ll2 / n - (ll / n).powi(2)).max(0.0).sqrt();
        v[16] = lg / (n - 1.0);
        v[17] = (lg2 / (n - 1.0) - (lg / (n - 1.0)).powi(2)).max(0.0).sqrt();
        v[18] = nic / n;
        f.windows.push(v);
    }
    f
}

/// Sorted copies of two samples, or None when either is empty.
fn sorted(a: &[f64], b: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    Some((a, b))
}

/// Kolmogorov-Smirnov statistic of two samples.
pub fn ks(a: &[f64], b: &[f64]) -> f64 {
    let Some((a, b)) = sorted(a, b) else {
        return f64::NAN;
    };
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// Wasserstein-1 distance of two samples (area between the empirical CDFs).
pub fn wasserstein(a: &[f64], b: &[f64]) -> f64 {
    let Some((a, b)) = sorted(a, b) else {
        return f64::NAN;
    };
    let mut all: Vec<f64> = a.iter().chain(b.iter()).copied().collect();
    all.sort_by(f64::total_cmp);
    let (mut i, mut j, mut w) = (0, 0, 0.0);
    for k in 0..all.len() - 1 {
        while i < a.len() && a[i] <= all[k] {
            i += 1;
        }
        while j < b.len() && b[j] <= all[k] {
            j += 1;
        }
        w += (i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs() * (all[k + 1] - all[k]);
    }
    w
}

fn tv<K: std::hash::Hash + Eq + Copy>(a: &HashMap<K, f64>, b: &HashMap<K, f64>) -> f64 {
    let (na, nb): (f64, f64) = (a.values().sum(), b.values().sum());
    if na == 0.0 || nb == 0.0 {
        return f64::NAN;
    }
    let mut d = 0.0;
    for (k, v) in a {
        d += (v / na - b.get(k).copied().unwrap_or(0.0) / nb).abs();
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            d += v / nb;
        }
    }
    d / 2.0
}

fn gaussian(rows: &[Vec<f64>]) -> (DVector<f64>, DMatrix<f64>) {
    let n = rows.len() as f64;
    let dim = rows[0].len();
    let mut mu = DVector::zeros(dim);
    for r in rows {
        mu += DVector::from_column_slice(r);
    }
    mu /= n;
    let mut cov = DMatrix::zeros(dim, dim);
    for r in rows {
        let x = DVector::from_column_slice(r) - &mu;
        cov += &x * x.transpose();
    }
    cov /= (n - 1.0).max(1.0);
    (mu, cov)
}

fn sqrtm_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let e = SymmetricEigen::new(m.clone());
    let d = DMatrix::from_diagonal(&e.eigenvalues.map(|l| l.max(0.0).sqrt()));
    &e.eigenvectors * d * e.eigenvectors.transpose()
}

/// Frechet distance between Gaussians fitted to two sets of feature vectors:
/// `|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)`.
pub fn frechet(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    if a.len() < 2 || b.len() < 2 {
        return f64::NAN;
    }
    let (m1, s1) = gaussian(a);
    let (m2, s2) = gaussian(b);
    let r1 = sqrtm_psd(&s1);
    let inner = &r1 * &s2 * &r1;
    let inner = (&inner + inner.transpose()) * 0.5;
    let cross = sqrtm_psd(&inner).trace();
    ((&m1 - &m2).norm_squared() + s1.trace() + s2.trace() - 2.0 * cross).max(0.0)
}

/// Compares `generated` with `reference` (both described by `meta`).
pub fn fidelity(meta: &TraceMeta, reference: &[Tlp], generated: &[Tlp]) -> Fidelity {
    let a = features(meta, reference);
    let b = features(meta, generated);
    Fidelity {
        ks_length: ks(&a.lengths, &b.lengths),
        ks_gap: ks(&a.gaps, &b.gaps),
        ks_stride: ks(&a.strides, &b.strides),
        w1_length: wasserstein(&a.lengths, &b.lengths),
        w1_gap: wasserstein(&a.gaps, &b.gaps),
        tv_bigram: tv(&a.bigrams, &b.bigrams),
        tv_trigram: tv(&a.trigrams, &b.trigrams),
        frechet: frechet(&a.windows, &b.windows),
    }
}
