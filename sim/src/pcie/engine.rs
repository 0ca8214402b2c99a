//! Event-driven simulation of PCIe devices doing DMA reads and writes or a NIC's transmit path,
//! at TLP granularity: per-direction serialization with Ack and UpdateFC DLLPs on the reverse
//! direction, replay buffers with a bit error rate (NAK, go-back-N replay), credit-based flow
//! control against finite receive buffers, tag pools, host memory latency and bandwidth with
//! cache-line effects, an IOMMU with an IOTLB, and an optional switch whose upstream link the
//! devices share. It reports bandwidth, latency percentiles and link statistics, and streams
//! the TLP trace seen on each device's link.
//!
//! Every queue is first-in first-out and events run in time order, so each link serializes
//! its TLPs exactly in the order they become ready; the root complex returns completions in
//! the order it receives the requests.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::link::{LinkConfig, DLLP_BYTES};
use super::tlp::{split_completions, split_requests, tag_pool, Dir, Kind, Tlp, ATTR_RO};
use super::{config_err, PcieError};

/// Requester ID of the host (root complex).
pub const HOST_ID: u16 = 0x0000;
/// Requester ID of device `d` (bus 1, device `d`).
pub fn device_id(d: u32) -> u16 {
    0x0100 + (d as u16) * 8
}
/// Address of the MSI doorbell (the x86 local-APIC window).
pub const MSI_ADDR: u64 = 0xFEE0_0000;
/// Base of device BAR0 (the NIC's doorbell register is at offset 0x10).
pub const BAR0: u64 = 0xF000_0000;
/// Base of the NIC's transmit descriptor ring in host memory.
pub const TX_RING: u64 = 0x1_0000_0000;
/// Base of the NIC's completion (write-back) ring.
pub const CQ_RING: u64 = 0x1_1000_0000;
/// Base of the NIC's packet buffers (one 16 KB slot per ring entry).
pub const PKT_BUF: u64 = 0x2_0000_0000;
/// Base of DMA buffers.
pub const DMA_BUF: u64 = 0x4_0000_0000;

/// The host side: root complex, memory, IOMMU and the root port's receive buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostConfig {
    /// Read latency from the root complex to data, last-level-cache hit (DDIO), ns.
    pub read_ns: f64,
    /// Extra latency of a cache miss (DRAM), ns.
    pub miss_ns: f64,
    /// Bytes of buffer the cache holds warm: buffers in a window up to this size hit.
    pub cache_bytes: u64,
    /// Buffers are warm in the cache (else every access misses).
    pub warm: bool,
    /// Memory bandwidth available to the port, GB/s (bytes per ns).
    pub mem_gbs: f64,
    /// Root-complex processing of a posted write before it commits, ns.
    pub write_ns: f64,
    /// Penalty of a partial cache-line write (read-modify-write), ns per partial line.
    pub rmw_ns: f64,
    /// IOMMU translation of every DMA address.
    pub iommu: bool,
    /// IOTLB entries (4 KB pages, least recently used replacement).
    pub iotlb: u32,
    /// Page walk on an IOTLB miss, ns.
    pub walk_ns: f64,
    /// Posted header credits of the receive buffer (0: infinite).
    pub ph: u32,
    /// Posted data credits (16 B each; 0: infinite).
    pub pd: u32,
    /// Non-posted header credits (0: infinite).
    pub nph: u32,
}

impl Default for HostConfig {
    /// Assumed values for a current server (not measured): 350 ns to the LLC, 90 ns more to
    /// DRAM, 20 GB/s, a 64-entry IOTLB with 300 ns walks, a root port with 32 posted headers,
    /// 4 KB of posted data and 32 non-posted headers.
    fn default() -> Self {
        HostConfig {
            read_ns: 350.0,
            miss_ns: 90.0,
            cache_bytes: 8 << 20,
            warm: true,
            mem_gbs: 20.0,
            write_ns: 30.0,
            rmw_ns: 60.0,
            iommu: false,
            iotlb: 64,
            walk_ns: 300.0,
            ph: 32,
            pd: 256,
            nph: 32,
        }
    }
}

/// A switch between the devices and the root port: the devices' links end at its downstream
/// ports and share its upstream link.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SwitchConfig {
    /// Port-to-port forwarding latency, ns.
    pub latency_ns: f64,
    /// The upstream link.
    pub upstream: LinkConfig,
}

/// How the link layer's DLLPs are charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Billing {
    /// As on the wire: each Ack or UpdateFC DLLP takes 8 bytes of the direction that carries
    /// it (the reverse of the TLPs it acknowledges), when the receiver's latency limit expires.
    Wire,
    /// As the pcie-bench model: every direction runs at its TLP-level bandwidth (one Ack and
    /// one UpdateFC billed as 8/limit of the link each, SKP deducted), and DLLPs take no wire.
    Bench,
}

/// Everything the simulator needs besides the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Each device's link.
    pub link: LinkConfig,
    /// Host.
    pub host: HostConfig,
    /// Optional switch.
    pub switch: Option<SwitchConfig>,
    /// Devices (each on its own link).
    pub devices: u32,
    /// Tag field width: 5, 8 or 10 bits.
    pub tag_bits: u32,
    /// Replay buffer capacity per transmitter, bytes.
    pub replay_bytes: u32,
    /// Bit error rate of every link (each errored TLP is NAKed and replayed).
    pub ber: f64,
    /// One-way latency of a link (PHY and data-link pipelines of both ends, flight), ns.
    pub link_ns: f64,
    /// Device processing between a doorbell or completion and its next request (NIC), ns.
    pub device_ns: f64,
    /// Set relaxed ordering on DMA writes and read requests.
    pub relaxed: bool,
    /// How DLLPs are charged.
    pub billing: Billing,
    /// Random seed (addresses, packet sizes and gaps, bit errors).
    pub seed: u64,
}

impl SimConfig {
    /// One device on a Gen3 x8 link (pcie-bench's setup) with the default host.
    pub fn gen3x8() -> Self {
        SimConfig {
            link: LinkConfig::gen3x8(),
            host: HostConfig::default(),
            switch: None,
            devices: 1,
            tag_bits: 8,
            replay_bytes: 16 << 10,
            ber: 0.0,
            link_ns: 60.0,
            device_ns: 100.0,
            relaxed: false,
            billing: Billing::Wire,
            seed: 1,
        }
    }

    /// Checks every field.
    pub fn check(&self) -> Result<(), PcieError> {
        self.link.check()?;
        if let Some(s) = &self.switch {
            s.upstream.check()?;
            if !(s.latency_ns >= 0.0 && s.latency_ns.is_finite()) {
                return Err(config_err("switch_ns", "must be a finite number >= 0"));
            }
        }
        if !(1..=64).contains(&self.devices) {
            return Err(config_err(
                "devices",
                format!("{}; choose 1 to 64", self.devices),
            ));
        }
        if self.devices > 1 && self.switch.is_none() {
            return Err(config_err("devices", "more than one device needs a switch"));
        }
        if tag_pool(self.tag_bits).is_none() {
            return Err(config_err(
                "tag_bits",
                format!("{}; choose 5, 8 or 10", self.tag_bits),
            ));
        }
        let max_tlp = self.link.mwr_bytes(self.link.mps);
        if self.replay_bytes < max_tlp {
            return Err(config_err(
                "replay_bytes",
                format!("{} cannot hold one {max_tlp}-byte TLP", self.replay_bytes),
            ));
        }
        if !(0.0..1e-3).contains(&self.ber) {
            return Err(config_err(
                "ber",
                format!("{}; choose 0 <= ber < 1e-3", self.ber),
            ));
        }
        let h = &self.host;
        for (name, v) in [
            ("read_ns", h.read_ns),
            ("miss_ns", h.miss_ns),
            ("write_ns", h.write_ns),
            ("rmw_ns", h.rmw_ns),
            ("walk_ns", h.walk_ns),
            ("link_ns", self.link_ns),
            ("device_ns", self.device_ns),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(config_err(
                    name,
                    format!("{v}; must be a finite number >= 0"),
                ));
            }
        }
        if !(h.mem_gbs > 0.0 && h.mem_gbs.is_finite()) {
            return Err(config_err("mem_gbs", "must be a finite number > 0"));
        }
        if h.iommu && h.iotlb == 0 {
            return Err(config_err(
                "iotlb",
                "an IOMMU needs at least one IOTLB entry",
            ));
        }
        if h.ph != 0 && (h.pd != 0 && h.pd < self.link.mps / 16) {
            return Err(config_err(
                "pd",
                format!(
                    "{} data credits cannot hold one MPS payload ({} credits)",
                    h.pd,
                    self.link.mps / 16
                ),
            ));
        }
        Ok(())
    }
}

/// What a DMA engine does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DmaOp {
    /// Device reads host memory.
    Read,
    /// Device writes host memory.
    Write,
    /// Alternating reads and writes.
    ReadWrite,
}

/// A workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Workload {
    /// Each device runs `ops` DMA transfers of `size` bytes.
    Dma {
        /// Read, write or both.
        op: DmaOp,
        /// Bytes per transfer.
        size: u32,
        /// Transfers per device.
        ops: u64,
        /// Addresses fall in a buffer window of this many bytes.
        window: u64,
        /// Random (else sequential) transfer addresses in the window.
        random: bool,
        /// Offset of every transfer from its natural alignment, bytes (cache-line effects).
        offset: u64,
        /// Transfers in flight per device (1: latency test).
        outstanding: u32,
    },
    /// Each device transmits `packets` packets the way a NIC does: the host rings a doorbell
    /// (MWr), the device reads the descriptor (MRd/CplD), then the packet (MRd/CplD), writes the
    /// descriptor back (MWr) and raises an MSI (MWr).
    Nic {
        /// Packets per device.
        packets: u64,
        /// Packet sizes (bytes) and their weights.
        sizes: Vec<(u32, f64)>,
        /// Mean gap between the host's doorbells (exponential), ns; 0: back to back.
        gap_ns: f64,
        /// Transmit ring entries: packets in flight per device.
        ring: u32,
    },
}

impl Workload {
    /// A DMA workload with sequential, aligned transfers.
    pub fn dma(op: DmaOp, size: u32, ops: u64, outstanding: u32) -> Workload {
        Workload::Dma {
            op,
            size,
            ops,
            window: 8 << 20,
            random: false,
            offset: 0,
            outstanding,
        }
    }

    /// The simple IMIX packet mix (7:4:1 of 64, 594 and 1518 bytes).
    pub fn imix() -> Vec<(u32, f64)> {
        vec![(64, 7.0), (594, 4.0), (1518, 1.0)]
    }

    fn check(&self) -> Result<(), PcieError> {
        match self {
            Workload::Dma {
                size,
                ops,
                window,
                offset,
                outstanding,
                ..
            } => {
                if *size == 0 || *size > 1 << 20 {
                    return Err(config_err(
                        "size",
                        format!("{size}; choose 1 to 1048576 bytes"),
                    ));
                }
                if *ops == 0 {
                    return Err(config_err("ops", "must be at least 1"));
                }
                if *window < *size as u64 + offset {
                    return Err(config_err(
                        "window",
                        format!("{window} is smaller than one transfer"),
                    ));
                }
                if *outstanding == 0 {
                    return Err(config_err("outstanding", "must be at least 1"));
                }
            }
            Workload::Nic {
                packets,
                sizes,
                gap_ns,
                ring,
            } => {
                if *packets == 0 || *ring == 0 {
                    return Err(config_err("packets", "packets and ring must be at least 1"));
                }
                if sizes.is_empty()
                    || sizes.iter().any(|(s, w)| {
                        *s == 0
                            || *s > 9216
                            || w.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
                    })
                {
                    return Err(config_err(
                        "sizes",
                        "packet sizes 1..=9216 bytes with positive weights",
                    ));
                }
                if !(*gap_ns >= 0.0 && gap_ns.is_finite()) {
                    return Err(config_err("gap_ns", "must be a finite number >= 0"));
                }
            }
        }
        Ok(())
    }
}

/// Receives the trace rows, in time order.
pub trait TraceSink {
    /// One row.
    fn row(&mut self, tlp: &Tlp);
}

impl TraceSink for Vec<Tlp> {
    fn row(&mut self, tlp: &Tlp) {
        self.push(*tlp);
    }
}

/// Discards the trace.
pub struct NoTrace;

impl TraceSink for NoTrace {
    fn row(&mut self, _: &Tlp) {}
}

/// Latency histogram, log-linear: 128 buckets per power of two (0.8% wide) from 1 ns to
/// 2^40 ns, indexed by the bits of the sample's floating-point representation.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    counts: Vec<u64>,
    n: u64,
    sum: f64,
    max: f64,
}

const MANTISSA_BITS: u32 = 7;
const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; 40 << MANTISSA_BITS],
            n: 0,
            sum: 0.0,
            max: 0.0,
        }
    }
}

impl Histogram {
    /// Adds a sample (ns).
    pub fn add(&mut self, ns: f64) {
        let i = if ns <= 1.0 {
            0
        } else {
            ((ns.to_bits() - ONE_BITS) >> (52 - MANTISSA_BITS)) as usize
        };
        let last = self.counts.len() - 1;
        self.counts[i.min(last)] += 1;
        self.n += 1;
        self.sum += ns;
        self.max = self.max.max(ns);
    }

    /// Samples.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean, ns (NaN when empty).
    pub fn mean(&self) -> f64 {
        self.sum / self.n as f64
    }

    /// Largest sample, ns.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// The `q`-quantile (0..=1), ns, to within 0.8% (NaN when empty).
    pub fn quantile(&self, q: f64) -> f64 {
        if self.n == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                // Upper edge of the bucket, capped by the largest sample.
                let edge = f64::from_bits(ONE_BITS + ((i as u64 + 1) << (52 - MANTISSA_BITS)));
                return edge.min(self.max);
            }
        }
        self.max
    }
}

/// One direction of one link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireStats {
    /// TLPs transmitted (replays not counted).
    pub tlps: u64,
    /// Bytes on the wire, TLPs (replays included) and DLLPs.
    pub bytes: u64,
    /// DLLPs (Acks, NAKs, UpdateFCs) transmitted.
    pub dllps: u64,
    /// TLPs replayed after a NAK.
    pub replays: u64,
    /// Time the transmitter waited for replay-buffer space, ns.
    pub replay_stall_ns: f64,
}

/// Results of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// From the first request to the last completion, ns.
    pub elapsed_ns: f64,
    /// Payload bytes the workload moved (DMA data, packet bytes).
    pub payload_bytes: u64,
    /// Completed transfers (DMA) or packets (NIC).
    pub ops: u64,
    /// Latency per transfer (first request to last completion, or write commit) or per packet
    /// (doorbell to MSI commit).
    pub latency: Histogram,
    /// Device 0's link, upstream.
    pub up: WireStats,
    /// Device 0's link, downstream.
    pub down: WireStats,
    /// All TLPs simulated, all links and hops.
    pub tlps: u64,
    /// IOTLB misses.
    pub iotlb_misses: u64,
    /// Time device 0 waited for flow-control credits, ns.
    pub credit_stall_ns: f64,
    /// Time device 0 waited for a free tag, ns.
    pub tag_stall_ns: f64,
}

impl Stats {
    /// Payload bandwidth, Gb/s.
    pub fn gbps(&self) -> f64 {
        self.payload_bytes as f64 * 8.0 / self.elapsed_ns
    }
}

struct Wire {
    ns_per_byte: f64,
    dllp_ns: f64,
    prop: f64,
    ack_ns: f64,
    free_at: f64,
    dllp: VecDeque<f64>,
    ack_due: f64,
    replay: VecDeque<(f64, u32)>,
    replay_bytes: u64,
    replay_cap: u64,
    ber: f64,
    bench: bool,
    stats: WireStats,
}

impl Wire {
    fn new(link: &LinkConfig, cfg: &SimConfig) -> Wire {
        let bench = cfg.billing == Billing::Bench;
        let ns_per_byte = if bench {
            8.0 / super::link::bench::tlp_gbps(link)
        } else {
            link.ns_per_byte()
        };
        Wire {
            bench,
            ns_per_byte,
            dllp_ns: DLLP_BYTES as f64 * ns_per_byte,
            prop: cfg.link_ns,
            ack_ns: link.ack_limit_ns(),
            free_at: 0.0,
            dllp: VecDeque::new(),
            ack_due: f64::NEG_INFINITY,
            replay: VecDeque::new(),
            replay_bytes: 0,
            replay_cap: cfg.replay_bytes as u64,
            ber: cfg.ber,
            stats: WireStats::default(),
        }
    }

    /// DLLPs due by `now` take the wire (after whatever it was sending).
    fn retire(&mut self, now: f64) {
        while let Some(&d) = self.dllp.front() {
            if d > now {
                break;
            }
            self.dllp.pop_front();
            self.free_at = self.free_at.max(d) + self.dllp_ns;
            self.stats.dllps += 1;
            self.stats.bytes += DLLP_BYTES as u64;
        }
    }

    /// Schedules a DLLP at `at` (>= `now`).
    fn push_dllp(&mut self, now: f64, at: f64) {
        if self.bench {
            return;
        }
        self.retire(now);
        let i = self
            .dllp
            .iter()
            .rposition(|&d| d <= at)
            .map_or(0, |i| i + 1);
        self.dllp.insert(i, at);
    }

    /// Sends a TLP of `bytes` wire bytes ready at `ready`; the receiver's Acks ride `rev`.
    /// Returns (start of transmission, arrival of its last byte at the receiver).
    fn transmit(
        &mut self,
        now: f64,
        ready: f64,
        bytes: u32,
        rev: &mut Wire,
        rng: &mut ChaCha8Rng,
    ) -> (f64, f64) {
        self.retire(now);
        let mut t = ready;
        while let Some(&(ack, b)) = self.replay.front() {
            let full =
                self.replay_bytes + bytes as u64 > self.replay_cap || self.replay.len() >= 2048;
            if ack <= t || full {
                if ack > t {
                    self.stats.replay_stall_ns += ack - t;
                    t = ack;
                }
                self.replay.pop_front();
                self.replay_bytes -= b as u64;
            } else {
                break;
            }
        }
        let start = t.max(self.free_at);
        let dur = bytes as f64 * self.ns_per_byte;
        let mut end = start + dur;
        self.stats.tlps += 1;
        self.stats.bytes += bytes as u64;
        if self.ber > 0.0 {
            let p_err = 1.0 - (1.0 - self.ber).powf(bytes as f64 * 8.0);
            while rng.random::<f64>() < p_err {
                // LCRC error: the receiver NAKs, the transmitter replays from this TLP; what
                // it sent meanwhile is discarded (go-back-N).
                let nak = end + self.prop + rev.dllp_ns + self.prop;
                rev.stats.dllps += 1;
                rev.stats.bytes += DLLP_BYTES as u64;
                end = nak + dur;
                self.stats.replays += 1;
                self.stats.bytes += bytes as u64;
            }
        }
        self.free_at = end;
        let arrival = end + self.prop;
        if arrival > self.ack_due {
            self.ack_due = arrival + self.ack_ns;
            rev.push_dllp(now, self.ack_due);
        }
        let acked = self.ack_due + rev.dllp_ns + self.prop;
        self.replay.push_back((acked, bytes));
        self.replay_bytes += bytes as u64;
        (start, arrival)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Issue(u32),
    SwUp(u32),
    SwDown(u32),
    CplReady(u32),
    DevCpl(u32),
    HostPkt(u32),
    Doorbell(u32, u32),
}

#[derive(Clone, Copy, PartialEq)]
enum Purpose {
    Dma(u32),
    NicDesc(u32),
    NicData(u32),
    NicWriteBack(u32),
    NicMsi(u32),
}

#[derive(Clone, Copy)]
struct Action {
    write: bool,
    addr: u64,
    len: u32,
    purpose: Purpose,
}

#[derive(Clone, Copy)]
struct Cursor {
    action: Action,
    next: u64,
    end: u64,
}

/// A request in flight (MRd awaiting completions, or a TLP crossing the switch).
#[derive(Clone, Copy)]
struct Flight {
    dev: u32,
    tlp: Tlp,
    purpose: Purpose,
    /// Last TLP of its action.
    last: bool,
    /// A completion crossing the switch: its read's flight; a doorbell crossing it: the
    /// packet it announces; otherwise unused.
    link: u32,
}

struct Op {
    start: f64,
    left: u32,
}

struct Packet {
    doorbell: f64,
    size: u32,
    left: u32,
}

#[derive(Default)]
struct Credits {
    h: [i64; 2],
    d: [i64; 2],
    infinite: [bool; 2],
    returns: [VecDeque<(f64, u32, u32)>; 2],
}

impl Credits {
    /// Takes `h` header and `d` data credits of class `c` (0 posted, 1 non-posted) at `now`;
    /// else the time enough will have returned (None: not before more are freed).
    fn take(&mut self, now: f64, c: usize, h: u32, d: u32) -> Result<(), Option<f64>> {
        while let Some(&(t, rh, rd)) = self.returns[c].front() {
            if t > now {
                break;
            }
            self.returns[c].pop_front();
            self.h[c] += rh as i64;
            self.d[c] += rd as i64;
        }
        if self.infinite[c] || (self.h[c] >= h as i64 && self.d[c] >= d as i64) {
            if !self.infinite[c] {
                self.h[c] -= h as i64;
                self.d[c] -= d as i64;
            }
            return Ok(());
        }
        let (mut hh, mut dd) = (self.h[c], self.d[c]);
        for &(t, rh, rd) in &self.returns[c] {
            hh += rh as i64;
            dd += rd as i64;
            if hh >= h as i64 && dd >= d as i64 {
                return Err(Some(t));
            }
        }
        Err(None)
    }
}

struct FcWindow {
    due: f64,
    hdr: u32,
    data: u32,
    open: bool,
}

struct Device {
    id: u16,
    up: Wire,
    down: Wire,
    queue: VecDeque<Action>,
    cur: Option<Cursor>,
    tags: VecDeque<u16>,
    credits: Credits,
    fc: [FcWindow; 2],
    issue_pending: bool,
    credit_blocked: bool,
    releases: VecDeque<(f64, u16, bool)>,
    release_blocked: bool,
    credit_since: Option<f64>,
    wait_tag: Option<f64>,
    ops_started: u64,
    outstanding: u32,
    ops: Vec<Op>,
    free_ops: Vec<u32>,
    seq_addr: u64,
    packets_posted: u64,
    packets_in_ring: u32,
    host_waiting: bool,
    pkts: Vec<Packet>,
}

/// The simulator. Build with [`Simulator::new`], run with [`Simulator::run`].
pub struct Simulator<'a> {
    cfg: SimConfig,
    work: Workload,
    devs: Vec<Device>,
    sw: Option<(Wire, Wire, f64)>,
    q: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    flights: Vec<Flight>,
    free_flights: Vec<u32>,
    rng: ChaCha8Rng,
    mem_free: f64,
    iotlb: Vec<(u64, u64)>,
    iotlb_clock: u64,
    rows: BinaryHeap<Reverse<RowKey>>,
    nic: super::trace::NicMap,
    sink: Option<&'a mut dyn TraceSink>,
    stats: Stats,
    first: f64,
    last: f64,
    done: u64,
}

#[derive(Clone, Copy)]
struct RowKey(u64, u64, Tlp);

impl PartialEq for RowKey {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for RowKey {}
impl PartialOrd for RowKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for RowKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(o.0, o.1))
    }
}

fn key(t: f64) -> u64 {
    // Non-negative finite times order like their bit patterns.
    t.to_bits()
}

impl<'a> Simulator<'a> {
    /// A simulator for `cfg` running `work`; `sink` receives the trace (rows in time order).
    pub fn new(
        cfg: &SimConfig,
        work: &Workload,
        sink: Option<&'a mut dyn TraceSink>,
    ) -> Result<Self, PcieError> {
        cfg.check()?;
        work.check()?;
        let pool = tag_pool(cfg.tag_bits).unwrap_or(32);
        // 10-bit tags: 256..1023 (those with both upper bits zero stay for 8-bit use).
        let tag0 = if cfg.tag_bits == 10 { 256 } else { 0 };
        let devs = (0..cfg.devices)
            .map(|d| {
                let mut credits = Credits::default();
                let h = &cfg.host;
                credits.h = [h.ph as i64, h.nph as i64];
                credits.d = [h.pd as i64, 0];
                credits.infinite = [h.ph == 0 || h.pd == 0, h.nph == 0];
                Device {
                    id: device_id(d),
                    up: Wire::new(&cfg.link, cfg),
                    down: Wire::new(&cfg.link, cfg),
                    queue: VecDeque::new(),
                    cur: None,
                    tags: (tag0..tag0 + pool).collect(),
                    credits,
                    fc: [0, 1].map(|_| FcWindow {
                        due: f64::NEG_INFINITY,
                        hdr: 0,
                        data: 0,
                        open: false,
                    }),
                    issue_pending: false,
                    credit_blocked: false,
                    releases: VecDeque::new(),
                    release_blocked: false,
                    credit_since: None,
                    wait_tag: None,
                    ops_started: 0,
                    outstanding: 0,
                    ops: Vec::new(),
                    free_ops: Vec::new(),
                    seq_addr: 0,
                    packets_posted: 0,
                    packets_in_ring: 0,
                    host_waiting: false,
                    pkts: Vec::new(),
                }
            })
            .collect();
        let sw = cfg.switch.map(|s| {
            (
                Wire::new(&s.upstream, cfg),
                Wire::new(&s.upstream, cfg),
                s.latency_ns,
            )
        });
        Ok(Simulator {
            cfg: cfg.clone(),
            work: work.clone(),
            devs,
            sw,
            q: BinaryHeap::new(),
            seq: 0,
            flights: Vec::new(),
            free_flights: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            mem_free: 0.0,
            iotlb: Vec::new(),
            iotlb_clock: 0,
            rows: BinaryHeap::new(),
            nic: super::trace::NicMap::simulator(
                match work {
                    Workload::Nic { ring, .. } => *ring,
                    _ => 1,
                },
                cfg.devices,
            ),
            sink,
            stats: Stats {
                elapsed_ns: 0.0,
                payload_bytes: 0,
                ops: 0,
                latency: Histogram::default(),
                up: WireStats::default(),
                down: WireStats::default(),
                tlps: 0,
                iotlb_misses: 0,
                credit_stall_ns: 0.0,
                tag_stall_ns: 0.0,
            },
            first: f64::INFINITY,
            last: 0.0,
            done: 0,
        })
    }

    fn at(&mut self, t: f64, ev: Ev) {
        self.seq += 1;
        self.q.push(Reverse((key(t), self.seq, ev)));
    }

    fn wake(&mut self, d: u32, t: f64) {
        if !self.devs[d as usize].issue_pending {
            self.devs[d as usize].issue_pending = true;
            self.at(t, Ev::Issue(d));
        }
    }

    fn emit(&mut self, t: Tlp) {
        if self.sink.is_some() {
            self.seq += 1;
            self.rows.push(Reverse(RowKey(key(t.time_ns), self.seq, t)));
        }
    }

    fn flight(&mut self, f: Flight) -> u32 {
        if let Some(i) = self.free_flights.pop() {
            self.flights[i as usize] = f;
            i
        } else {
            self.flights.push(f);
            self.flights.len() as u32 - 1
        }
    }

    /// Runs to completion and returns the statistics.
    pub fn run(mut self) -> Stats {
        for d in 0..self.cfg.devices {
            match self.work {
                Workload::Dma { .. } => self.wake(d, 0.0),
                Workload::Nic { .. } => self.at(0.0, Ev::HostPkt(d)),
            }
        }
        while let Some(Reverse((k, _, ev))) = self.q.pop() {
            let now = f64::from_bits(k);
            if self.sink.is_some() {
                self.flush(now);
            }
            match ev {
                Ev::Issue(d) => self.issue(now, d),
                Ev::SwUp(f) => self.switch_up(now, f),
                Ev::SwDown(f) => self.switch_down(now, f),
                Ev::CplReady(f) => self.cpl_ready(now, f),
                Ev::DevCpl(f) => self.dev_cpl(now, f),
                Ev::HostPkt(d) => self.host_packet(now, d),
                Ev::Doorbell(d, p) => {
                    let addr = self.nic.desc(d, p % self.nic.slots);
                    self.devs[d as usize].queue.push_back(Action {
                        write: false,
                        addr,
                        len: 16,
                        purpose: Purpose::NicDesc(p),
                    });
                    self.wake(d, now);
                }
            }
        }
        self.flush(f64::INFINITY);
        let mut s = self.stats;
        s.elapsed_ns = self.last - self.first.min(self.last);
        s.ops = self.done;
        s.up = self.devs[0].up.stats.clone();
        s.down = self.devs[0].down.stats.clone();
        s.tlps = self
            .devs
            .iter()
            .map(|d| d.up.stats.tlps + d.down.stats.tlps)
            .sum::<u64>()
            + self
                .sw
                .as_ref()
                .map_or(0, |(u, d, _)| u.stats.tlps + d.stats.tlps);
        s
    }

    fn ring(&self) -> u32 {
        match self.work {
            Workload::Nic { ring, .. } => ring,
            _ => 1,
        }
    }

    /// Writes out the rows that nothing can precede any more (all before `now` and before any
    /// open UpdateFC window).
    fn flush(&mut self, now: f64) {
        for d in 0..self.devs.len() {
            for c in 0..2 {
                let w = &self.devs[d].fc[c];
                if w.open && w.due < now {
                    self.close_fc(d, c);
                }
            }
        }
        let mut mark = now;
        for dev in &self.devs {
            for w in &dev.fc {
                if w.open {
                    mark = mark.min(w.due);
                }
            }
        }
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        while let Some(Reverse(RowKey(k, _, _))) = self.rows.peek() {
            if f64::from_bits(*k) >= mark && mark.is_finite() {
                break;
            }
            if let Some(Reverse(RowKey(_, _, t))) = self.rows.pop() {
                sink.row(&t);
            }
        }
    }

    fn close_fc(&mut self, d: usize, c: usize) {
        let dev = &mut self.devs[d];
        let w = &mut dev.fc[c];
        w.open = false;
        let mut row = Tlp::request(
            w.due,
            Dir::Down,
            if c == 0 { Kind::FcP } else { Kind::FcNp },
            0,
            w.data,
            dev.id,
            0,
        );
        row.byte_count = w.hdr;
        self.emit(row);
    }

    /// The receiver of device `d`'s link frees credits at `at`; an UpdateFC returns them.
    fn free_credits(&mut self, now: f64, d: u32, c: usize, hdr: u32, data: u32, at: f64) {
        let dev = &mut self.devs[d as usize];
        if dev.credits.infinite[c] {
            return;
        }
        let w = &dev.fc[c];
        if !(w.open && at <= w.due) {
            if w.open {
                self.close_fc(d as usize, c);
            }
            let dev = &mut self.devs[d as usize];
            let fc_ns = self.cfg.link.ack_limit_ns();
            dev.fc[c] = FcWindow {
                due: at + fc_ns,
                hdr: 0,
                data: 0,
                open: true,
            };
            let due = dev.fc[c].due;
            dev.down.push_dllp(now, due);
        }
        let dev = &mut self.devs[d as usize];
        dev.fc[c].hdr += hdr;
        dev.fc[c].data += data;
        let visible = dev.fc[c].due + dev.down.dllp_ns + dev.down.prop;
        dev.credits.returns[c].push_back((visible, hdr, data));
        if dev.credit_blocked {
            dev.credit_blocked = false;
            self.wake(d, visible);
        }
    }

    /// Starts the next DMA transfer of device `d` if the workload has one and it may.
    fn next_dma(&mut self, now: f64, d: u32) -> bool {
        let Workload::Dma {
            op,
            size,
            ops,
            window,
            random,
            offset,
            outstanding,
        } = self.work
        else {
            return false;
        };
        let dev = &mut self.devs[d as usize];
        if dev.ops_started >= ops || dev.outstanding >= outstanding {
            return false;
        }
        // Transfers sit at multiples of their size rounded up to a power of two (64 B to 4 KB)
        // within the window, shifted by `offset`.
        let align = (size as u64).next_power_of_two().clamp(64, 4096);
        let stride = (size as u64).div_ceil(align) * align;
        let slots = ((window - offset) / stride).max(1);
        let slot = if random {
            self.rng.random_range(0..slots)
        } else {
            let s = dev.seq_addr % slots;
            dev.seq_addr += 1;
            s
        };
        let addr = DMA_BUF + (d as u64) * (1 << 32) + slot * stride + offset;
        let write = match op {
            DmaOp::Read => false,
            DmaOp::Write => true,
            DmaOp::ReadWrite => dev.ops_started % 2 == 1,
        };
        let max = if write {
            self.cfg.link.mps
        } else {
            self.cfg.link.mrrs
        };
        let left = split_requests(addr, size as u64, max).count() as u32;
        let id = if let Some(i) = dev.free_ops.pop() {
            dev.ops[i as usize] = Op { start: now, left };
            i
        } else {
            dev.ops.push(Op { start: now, left });
            dev.ops.len() as u32 - 1
        };
        dev.ops_started += 1;
        dev.outstanding += 1;
        dev.queue.push_back(Action {
            write,
            addr,
            len: size,
            purpose: Purpose::Dma(id),
        });
        self.first = self.first.min(now);
        true
    }

    /// Tags and transfer slots of finished DMA reads come back at their completions' arrival.
    fn take_releases(&mut self, now: f64, d: u32) {
        let dev = &mut self.devs[d as usize];
        while let Some(&(t, tag, op_done)) = dev.releases.front() {
            if t > now {
                break;
            }
            dev.releases.pop_front();
            dev.tags.push_back(tag);
            dev.outstanding -= op_done as u32;
        }
    }

    /// Device `d` cannot go on before a DMA read finishes: wake it then.
    fn await_release(&mut self, d: u32) {
        let dev = &mut self.devs[d as usize];
        match dev.releases.front() {
            Some(&(t, _, _)) => self.wake(d, t),
            None => dev.release_blocked = true,
        }
    }

    fn issue(&mut self, now: f64, d: u32) {
        self.devs[d as usize].issue_pending = false;
        self.take_releases(now, d);
        if self.devs[d as usize].cur.is_none() {
            if self.devs[d as usize].queue.is_empty() && !self.next_dma(now, d) {
                if let Workload::Dma { ops, .. } = self.work {
                    if self.devs[d as usize].ops_started < ops {
                        self.await_release(d);
                    }
                }
            }
            let dev = &mut self.devs[d as usize];
            let Some(a) = dev.queue.pop_front() else {
                return;
            };
            dev.cur = Some(Cursor {
                action: a,
                next: a.addr,
                end: a.addr + a.len as u64,
            });
        }
        let link = self.cfg.link;
        let dev = &mut self.devs[d as usize];
        let Some(cur) = dev.cur else { return };
        let a = cur.action;
        let max = if a.write { link.mps } else { link.mrrs };
        let Some((addr, n)) = split_requests(cur.next, cur.end - cur.next, max).next() else {
            return;
        };
        let (class, hdr, data) = if a.write {
            (0, 1, n.div_ceil(16))
        } else {
            (1, 1, 0)
        };
        let tag = if a.write {
            0
        } else {
            match dev.tags.front() {
                Some(&t) => t,
                None => {
                    dev.wait_tag.get_or_insert(now);
                    self.await_release(d);
                    return;
                }
            }
        };
        if let Some(t) = dev.wait_tag.take() {
            if d == 0 {
                self.stats.tag_stall_ns += now - t;
            }
        }
        let dev = &mut self.devs[d as usize];
        match dev.credits.take(now, class, hdr, data) {
            Ok(()) => {
                if let Some(t) = dev.credit_since.take() {
                    if d == 0 {
                        self.stats.credit_stall_ns += now - t;
                    }
                }
            }
            Err(t) => {
                dev.credit_since.get_or_insert(now);
                match t {
                    Some(t) => self.wake(d, t),
                    None => dev.credit_blocked = true,
                }
                return;
            }
        }
        if !a.write {
            dev.tags.pop_front();
        }
        let bytes = if a.write {
            link.mwr_bytes(n)
        } else {
            link.mrd_bytes()
        };
        let (start, arrival) = dev
            .up
            .transmit(now, now, bytes, &mut dev.down, &mut self.rng);
        let last = addr + n as u64 >= cur.end;
        dev.cur = if last {
            None
        } else {
            Some(Cursor {
                next: addr + n as u64,
                ..cur
            })
        };
        let mut tlp = Tlp::request(
            start,
            Dir::Up,
            if a.write { Kind::MWr } else { Kind::MRd },
            addr,
            n,
            dev.id,
            tag,
        );
        if self.cfg.relaxed && !matches!(a.purpose, Purpose::NicMsi(_)) {
            tlp.attr = ATTR_RO;
        }
        let next = dev.up.free_at;
        self.emit(tlp);
        let f = self.flight(Flight {
            dev: d,
            tlp,
            purpose: a.purpose,
            last,
            link: 0,
        });
        if a.write && last {
            // A posted write is done, for the device, once it has sent it.
            if let Purpose::Dma(_) = a.purpose {
                self.devs[d as usize].outstanding -= 1;
            }
        }
        if let Some((_, _, sw_ns)) = self.sw {
            self.at(arrival + sw_ns, Ev::SwUp(f));
        } else {
            let accepted = self.root_receive(now, f, arrival);
            self.free_credits(now, d, class, hdr, data, accepted);
        }
        self.wake(d, next.max(now));
    }

    /// A TLP forwarded by the switch onto its upstream link at `now`.
    fn switch_up(&mut self, now: f64, f: u32) {
        let fl = self.flights[f as usize];
        let (class, hdr, data) = if fl.tlp.kind == Kind::MWr {
            (0, 1, fl.tlp.length.div_ceil(16))
        } else {
            (1, 1, 0)
        };
        // The switch's ingress buffer frees the credits as it forwards.
        self.free_credits(now, fl.dev, class, hdr, data, now);
        let link = self.cfg.switch.map_or(self.cfg.link, |s| s.upstream);
        let bytes = if fl.tlp.kind == Kind::MWr {
            link.mwr_bytes(fl.tlp.length)
        } else {
            link.mrd_bytes()
        };
        let Some((up, down, _)) = self.sw.as_mut() else {
            return;
        };
        let (_, arrival) = up.transmit(now, now, bytes, down, &mut self.rng);
        self.root_receive(now, f, arrival);
    }

    /// The root complex receives flight `f` at `arrival`; returns when its buffer frees.
    fn root_receive(&mut self, now: f64, f: u32, arrival: f64) -> f64 {
        let fl = self.flights[f as usize];
        let h = self.cfg.host.clone();
        let t = fl.tlp;
        let mut delay = 0.0;
        if h.iommu && !(MSI_ADDR..MSI_ADDR + (64 << 12)).contains(&t.address) {
            let page = t.address >> 12;
            self.iotlb_clock += 1;
            if let Some(e) = self.iotlb.iter_mut().find(|e| e.0 == page) {
                e.1 = self.iotlb_clock;
            } else {
                self.stats.iotlb_misses += 1;
                delay = h.walk_ns;
                if self.iotlb.len() < h.iotlb as usize {
                    self.iotlb.push((page, self.iotlb_clock));
                } else if let Some(e) = self.iotlb.iter_mut().min_by_key(|e| e.1) {
                    *e = (page, self.iotlb_clock);
                }
            }
        }
        let first_line = t.address / 64;
        let lines = (t.address + t.length.max(1) as u64 - 1) / 64 - first_line + 1;
        let line_ns = 64.0 / h.mem_gbs;
        if t.kind == Kind::MWr {
            let partial = !t.address.is_multiple_of(64) as u32
                + (!(t.address + t.length as u64).is_multiple_of(64) && lines > 1) as u32;
            let commit = (arrival + h.write_ns + delay).max(self.mem_free)
                + lines as f64 * line_ns
                + partial as f64 * h.rmw_ns;
            self.mem_free = commit;
            self.free_flights.push(f);
            self.written(now, fl, commit);
            commit
        } else {
            let hit = h.warm && self.window() <= h.cache_bytes;
            let lat = h.read_ns + if hit { 0.0 } else { h.miss_ns };
            let start = (arrival + delay)
                .max(self.mem_free - lat)
                .max(arrival + delay);
            self.mem_free = start.max(self.mem_free) + lines as f64 * line_ns;
            self.at(start + lat, Ev::CplReady(f));
            arrival + h.write_ns
        }
    }

    fn window(&self) -> u64 {
        match self.work {
            Workload::Dma { window, .. } => window,
            Workload::Nic { ring, .. } => ring as u64 * 2048,
        }
    }

    /// A posted write committed at `commit`.
    fn written(&mut self, now: f64, fl: Flight, commit: f64) {
        let d = fl.dev as usize;
        match fl.purpose {
            Purpose::Dma(op) => {
                self.stats.payload_bytes += fl.tlp.length as u64;
                if fl.last {
                    let o = &self.devs[d].ops[op as usize];
                    self.stats.latency.add(commit - o.start);
                    self.devs[d].free_ops.push(op);
                    self.done += 1;
                    self.last = self.last.max(commit);
                }
            }
            Purpose::NicMsi(p) => {
                let ring = self.ring();
                let dev = &mut self.devs[d];
                let pkt = &dev.pkts[(p % ring) as usize];
                self.stats.latency.add(commit - pkt.doorbell);
                self.stats.payload_bytes += pkt.size as u64;
                self.done += 1;
                self.last = self.last.max(commit);
                let dev = &mut self.devs[d];
                dev.packets_in_ring -= 1;
                if dev.host_waiting {
                    dev.host_waiting = false;
                    self.at(commit.max(now), Ev::HostPkt(fl.dev));
                }
            }
            _ => {}
        }
    }

    /// Completions of flight `f` are ready at the root at `now`.
    fn cpl_ready(&mut self, now: f64, f: u32) {
        let fl = self.flights[f as usize];
        let link = self.cfg.link;
        let mem = self.cfg.host.mem_gbs;
        let mut done = 0u32;
        let mut last_arrival = now;
        for (addr, n, bc) in split_completions(fl.tlp.address, fl.tlp.length, link.rcb, link.mps) {
            done += n;
            let ready = now + done as f64 / mem;
            let mut row = Tlp::request(
                0.0,
                Dir::Down,
                Kind::CplD,
                addr,
                n,
                fl.tlp.requester,
                fl.tlp.tag,
            );
            row.byte_count = bc;
            row.lower_addr = (addr & 0x7f) as u8;
            row.attr = fl.tlp.attr;
            if let Some((up, down, sw_ns)) = self.sw.as_mut() {
                let (_, arrival) = down.transmit(now, ready, link.cpld_bytes(n), up, &mut self.rng);
                let sw_ns = *sw_ns;
                let g = self.flight(Flight {
                    dev: fl.dev,
                    tlp: row,
                    purpose: fl.purpose,
                    last: bc == n,
                    link: f,
                });
                self.at(arrival + sw_ns, Ev::SwDown(g));
            } else {
                let dev = &mut self.devs[fl.dev as usize];
                let (start, arrival) =
                    dev.down
                        .transmit(now, ready, link.cpld_bytes(n), &mut dev.up, &mut self.rng);
                row.time_ns = start;
                last_arrival = arrival;
                self.emit(row);
            }
        }
        if self.sw.is_none() {
            self.read_done(now, f, last_arrival);
        }
    }

    /// A TLP crosses the switch downstream onto device link at `now`.
    fn switch_down(&mut self, now: f64, g: u32) {
        let fl = self.flights[g as usize];
        let link = self.cfg.link;
        let dev = &mut self.devs[fl.dev as usize];
        let bytes = if fl.tlp.kind == Kind::CplD {
            link.cpld_bytes(fl.tlp.length)
        } else {
            link.mwr_bytes(fl.tlp.length)
        };
        let (start, arrival) = dev
            .down
            .transmit(now, now, bytes, &mut dev.up, &mut self.rng);
        let mut row = fl.tlp;
        row.time_ns = start;
        self.emit(row);
        self.free_flights.push(g);
        match fl.tlp.kind {
            Kind::CplD if fl.last => self.read_done(now, fl.link, arrival),
            Kind::MWr => {
                let dn = self.cfg.device_ns;
                let p = fl.link;
                self.at(arrival + dn, Ev::Doorbell(fl.dev, p));
            }
            _ => {}
        }
    }

    /// All completions of read flight `f` reach the device at `arrival`. DMA reads are
    /// accounted for at once and release their tag and transfer slot at `arrival`; NIC reads
    /// drive the next step then.
    fn read_done(&mut self, now: f64, f: u32, arrival: f64) {
        let fl = self.flights[f as usize];
        let Purpose::Dma(op) = fl.purpose else {
            self.at(arrival, Ev::DevCpl(f));
            return;
        };
        self.free_flights.push(f);
        let d = fl.dev;
        let dev = &mut self.devs[d as usize];
        self.stats.payload_bytes += fl.tlp.length as u64;
        self.last = self.last.max(arrival);
        let o = &mut dev.ops[op as usize];
        o.left -= 1;
        let op_done = o.left == 0;
        if op_done {
            self.stats.latency.add(arrival - o.start);
            dev.free_ops.push(op);
            self.done += 1;
        }
        dev.releases.push_back((arrival, fl.tlp.tag, op_done));
        if dev.release_blocked {
            dev.release_blocked = false;
            self.wake(d, arrival.max(now));
        }
    }

    /// All completions of (NIC) read flight `f` have reached the device at `now`.
    fn dev_cpl(&mut self, now: f64, f: u32) {
        let fl = self.flights[f as usize];
        self.free_flights.push(f);
        let d = fl.dev;
        let ring = self.ring();
        let dev = &mut self.devs[d as usize];
        dev.tags.push_back(fl.tlp.tag);
        self.last = self.last.max(now);
        let dn = self.cfg.device_ns;
        match fl.purpose {
            Purpose::NicDesc(p) => {
                let size = dev.pkts[(p % ring) as usize].size;
                let addr = self.nic.buf(d, p % ring);
                let left = split_requests(addr, size as u64, self.cfg.link.mrrs).count() as u32;
                let dev = &mut self.devs[d as usize];
                dev.pkts[(p % ring) as usize].left = left;
                dev.queue.push_back(Action {
                    write: false,
                    addr,
                    len: size,
                    purpose: Purpose::NicData(p),
                });
                self.wake(d, now + dn);
            }
            Purpose::NicData(p) => {
                let pkt = &mut dev.pkts[(p % ring) as usize];
                pkt.left -= 1;
                if pkt.left == 0 {
                    dev.queue.push_back(Action {
                        write: true,
                        addr: self.nic.cq(d, p % ring),
                        len: 16,
                        purpose: Purpose::NicWriteBack(p),
                    });
                    let msi = self.nic.msi_of(d);
                    let dev = &mut self.devs[d as usize];
                    dev.queue.push_back(Action {
                        write: true,
                        addr: msi,
                        len: 4,
                        purpose: Purpose::NicMsi(p),
                    });
                    self.wake(d, now + dn);
                } else {
                    self.wake(d, now);
                }
            }
            _ => self.wake(d, now),
        }
    }

    /// The host posts the next packet of device `d` and rings its doorbell.
    fn host_packet(&mut self, now: f64, d: u32) {
        let Workload::Nic {
            packets,
            ref sizes,
            gap_ns,
            ring,
        } = self.work
        else {
            return;
        };
        let dev = &mut self.devs[d as usize];
        if dev.packets_posted >= packets {
            return;
        }
        if dev.packets_in_ring >= ring {
            dev.host_waiting = true;
            return;
        }
        let total: f64 = sizes.iter().map(|s| s.1).sum();
        let mut u = self.rng.random::<f64>() * total;
        let mut size = sizes[sizes.len() - 1].0;
        for &(s, w) in sizes {
            if u < w {
                size = s;
                break;
            }
            u -= w;
        }
        let p = dev.packets_posted as u32;
        dev.packets_posted += 1;
        dev.packets_in_ring += 1;
        let pkt = Packet {
            doorbell: now,
            size,
            left: 0,
        };
        let slot = (p % ring) as usize;
        if dev.pkts.len() <= slot {
            dev.pkts.push(pkt);
        } else {
            dev.pkts[slot] = pkt;
        }
        self.first = self.first.min(now);
        let link = self.cfg.link;
        let db = Tlp::request(
            now,
            Dir::Down,
            Kind::MWr,
            self.nic.doorbell(d),
            4,
            HOST_ID,
            0,
        );
        if let Some((up, down, sw_ns)) = self.sw.as_mut() {
            let (_, arrival) = down.transmit(now, now, link.mwr_bytes(4), up, &mut self.rng);
            let sw_ns = *sw_ns;
            let g = self.flight(Flight {
                dev: d,
                tlp: db,
                purpose: Purpose::NicDesc(p),
                last: true,
                link: p,
            });
            self.at(arrival + sw_ns, Ev::SwDown(g));
        } else {
            let dev = &mut self.devs[d as usize];
            let (start, arrival) =
                dev.down
                    .transmit(now, now, link.mwr_bytes(4), &mut dev.up, &mut self.rng);
            self.emit(Tlp {
                time_ns: start,
                ..db
            });
            let dn = self.cfg.device_ns;
            self.at(arrival + dn, Ev::Doorbell(d, p));
        }
        let gap = if gap_ns > 0.0 {
            -gap_ns * (1.0 - self.rng.random::<f64>()).ln()
        } else {
            0.0
        };
        self.at(now + gap, Ev::HostPkt(d));
    }
}

/// The trace metadata of a run: link parameters, the host's credits, the NIC's address map.
pub fn trace_meta(cfg: &SimConfig, work: &Workload) -> super::trace::TraceMeta {
    let h = &cfg.host;
    super::trace::TraceMeta {
        mps: cfg.link.mps,
        mrrs: cfg.link.mrrs,
        rcb: cfg.link.rcb,
        tag_bits: cfg.tag_bits,
        credits: Some((h.ph, h.pd, h.nph)),
        nic: match work {
            Workload::Nic { ring, .. } => Some(super::trace::NicMap::simulator(*ring, cfg.devices)),
            _ => None,
        },
    }
}

/// Runs `work` on `cfg`, streaming the trace into `sink` if given.
pub fn simulate(
    cfg: &SimConfig,
    work: &Workload,
    sink: Option<&mut dyn TraceSink>,
) -> Result<Stats, PcieError> {
    Ok(Simulator::new(cfg, work, sink)?.run())
}
