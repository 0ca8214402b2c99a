//! The TLP trace format: CSV with `#` metadata lines, one row per TLP (or UpdateFC DLLP), in
//! time order.
//!
//! ```text
//! # archsweep pcie trace v1
//! # link mps=256 mrrs=512 rcb=64 tag_bits=8
//! # credits ph=32 pd=256 nph=32
//! # nic bar0=0xf0000000 tx_ring=0x100000000 cq_ring=0x110000000 pkt_buf=0x200000000 slots=64 msi=0xfee00000 devices=1
//! time_ns,dir,type,address,length,requester,tag,attr,tc,byte_count,lower_addr
//! 0.000,down,MWr,0xf0000010,4,0x0000,0,0,0,0,0
//! ```
//!
//! Columns: `time_ns` start of transmission at the observation point (the device's link), ns,
//! non-decreasing; `dir` `up` (device to host) or `down`; `type` MRd, MWr, CplD, Cpl, Msg,
//! UpdateFC-P or UpdateFC-NP; `address` (decimal or 0x hex; completions: the address of their
//! first byte, 0 if unknown); `length` payload bytes (MRd: bytes requested; UpdateFC: data
//! credits returned); `requester` requester ID (completions: the request's); `tag`; `attr`
//! bit 0 relaxed ordering, bit 1 ID-based ordering; `tc` traffic class 0-7; `byte_count`
//! completions: bytes still to come including this one (UpdateFC: header credits returned);
//! `lower_addr` completions: low 7 bits of the first byte's address. The metadata lines are
//! optional: without `link`, the validator assumes the specification's maxima (4096 B); without
//! `credits` it skips the credit check; without `nic` the NIC causality check.

use std::io::{BufRead, Write};

use super::engine::{TraceSink, BAR0, CQ_RING, MSI_ADDR, PKT_BUF, TX_RING};
use super::tlp::{Dir, Kind, Tlp};
use super::PcieError;

/// The column header line.
pub const HEADER: &str =
    "time_ns,dir,type,address,length,requester,tag,attr,tc,byte_count,lower_addr";

/// Where the NIC workload keeps its rings and buffers (for the causality check).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NicMap {
    /// Doorbell register (BAR0 + 0x10 for device 0).
    pub bar0: u64,
    /// Transmit descriptor ring (16 B entries).
    pub tx_ring: u64,
    /// Completion ring (16 B entries).
    pub cq_ring: u64,
    /// Packet buffers (16 KB per ring slot).
    pub pkt_buf: u64,
    /// Ring slots per device.
    pub slots: u32,
    /// MSI address of device 0 (device `d` targets `msi + d * 4096`).
    pub msi: u64,
    /// Devices; each has its own doorbell page (64 KB apart) and its own stretch of every
    /// ring and of the buffers.
    pub devices: u32,
}

/// What a NIC address is, and whose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicPlace {
    /// A doorbell register.
    Doorbell,
    /// A transmit descriptor (ring slot).
    Desc(u32),
    /// A packet buffer (ring slot).
    Buf(u32),
    /// A completion-ring entry (ring slot).
    Cq(u32),
    /// The MSI address.
    Msi,
}

impl NicMap {
    /// The simulator's map for `devices` devices with rings of `slots` entries.
    pub fn simulator(slots: u32, devices: u32) -> NicMap {
        NicMap {
            bar0: BAR0,
            tx_ring: TX_RING,
            cq_ring: CQ_RING,
            pkt_buf: PKT_BUF,
            slots,
            msi: MSI_ADDR,
            devices,
        }
    }

    fn index(&self, d: u32, slot: u32) -> u64 {
        d as u64 * self.slots as u64 + slot as u64
    }

    /// Device `d`'s doorbell register.
    pub fn doorbell(&self, d: u32) -> u64 {
        self.bar0 + d as u64 * 0x10000 + 0x10
    }

    /// Descriptor `slot` of device `d`.
    pub fn desc(&self, d: u32, slot: u32) -> u64 {
        self.tx_ring + self.index(d, slot) * 16
    }

    /// Packet buffer `slot` of device `d` (16 KB each).
    pub fn buf(&self, d: u32, slot: u32) -> u64 {
        self.pkt_buf + self.index(d, slot) * 16384
    }

    /// Completion-ring entry `slot` of device `d`.
    pub fn cq(&self, d: u32, slot: u32) -> u64 {
        self.cq_ring + self.index(d, slot) * 16
    }

    /// Device `d`'s MSI address.
    pub fn msi_of(&self, d: u32) -> u64 {
        self.msi + ((d as u64) << 12)
    }

    /// Classifies a memory request's address: which place of which device it touches.
    pub fn classify(&self, dir: Dir, addr: u64) -> Option<(NicPlace, u32)> {
        let n = self.devices as u64 * self.slots as u64;
        let slot = |base: u64, size: u64| -> Option<(u32, u32)> {
            (base..base + n * size)
                .contains(&addr)
                .then(|| (addr - base) / size)
                .map(|i| {
                    (
                        (i / self.slots as u64) as u32,
                        (i % self.slots as u64) as u32,
                    )
                })
        };
        if dir == Dir::Down {
            return (self.bar0..self.bar0 + self.devices as u64 * 0x10000)
                .contains(&addr)
                .then(|| (NicPlace::Doorbell, ((addr - self.bar0) / 0x10000) as u32));
        }
        if let Some((d, s)) = slot(self.tx_ring, 16) {
            return Some((NicPlace::Desc(s), d));
        }
        if let Some((d, s)) = slot(self.pkt_buf, 16384) {
            return Some((NicPlace::Buf(s), d));
        }
        if let Some((d, s)) = slot(self.cq_ring, 16) {
            return Some((NicPlace::Cq(s), d));
        }
        if addr >= self.msi
            && (addr - self.msi).is_multiple_of(4096)
            && (addr - self.msi) / 4096 < self.devices as u64
        {
            return Some((NicPlace::Msi, ((addr - self.msi) / 4096) as u32));
        }
        None
    }
}

/// What the metadata lines say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceMeta {
    /// Maximum payload size.
    pub mps: u32,
    /// Maximum read request size.
    pub mrrs: u32,
    /// Read completion boundary.
    pub rcb: u32,
    /// Tag field bits.
    pub tag_bits: u32,
    /// Advertised posted header, posted data and non-posted header credits of the host.
    pub credits: Option<(u32, u32, u32)>,
    /// The NIC's address map.
    pub nic: Option<NicMap>,
}

impl Default for TraceMeta {
    /// The specification's maxima, 10-bit tags, no credit or NIC information.
    fn default() -> Self {
        TraceMeta {
            mps: 4096,
            mrrs: 4096,
            rcb: 64,
            tag_bits: 10,
            credits: None,
            nic: None,
        }
    }
}

impl TraceMeta {
    /// The metadata lines (without the column header).
    pub fn lines(&self) -> String {
        let mut s = format!(
            "# archsweep pcie trace v1\n# link mps={} mrrs={} rcb={} tag_bits={}\n",
            self.mps, self.mrrs, self.rcb, self.tag_bits
        );
        if let Some((ph, pd, nph)) = self.credits {
            s += &format!("# credits ph={ph} pd={pd} nph={nph}\n");
        }
        if let Some(n) = self.nic {
            s += &format!(
                "# nic bar0={:#x} tx_ring={:#x} cq_ring={:#x} pkt_buf={:#x} slots={} msi={:#x} devices={}\n",
                n.bar0, n.tx_ring, n.cq_ring, n.pkt_buf, n.slots, n.msi, n.devices
            );
        }
        s
    }
}

/// Writes rows as CSV (a [`TraceSink`]); the first I/O error is kept for [`TraceWriter::finish`].
pub struct TraceWriter<W: Write> {
    out: W,
    err: Option<std::io::Error>,
    rows: u64,
}

impl<W: Write> TraceWriter<W> {
    /// Writes the metadata and header.
    pub fn new(mut out: W, meta: &TraceMeta) -> Result<Self, PcieError> {
        writeln!(out, "{}{HEADER}", meta.lines()).map_err(|e| PcieError::Io(e.to_string()))?;
        Ok(TraceWriter {
            out,
            err: None,
            rows: 0,
        })
    }

    /// Flushes; the first write error if any; the rows written.
    pub fn finish(mut self) -> Result<u64, PcieError> {
        if let Some(e) = self.err.take() {
            return Err(PcieError::Io(e.to_string()));
        }
        self.out.flush().map_err(|e| PcieError::Io(e.to_string()))?;
        Ok(self.rows)
    }
}

impl<W: Write> TraceSink for TraceWriter<W> {
    fn row(&mut self, t: &Tlp) {
        if self.err.is_some() {
            return;
        }
        let r = writeln!(
            self.out,
            "{:.3},{},{},{:#x},{},{:#06x},{},{},{},{},{}",
            t.time_ns,
            t.dir.name(),
            t.kind.name(),
            t.address,
            t.length,
            t.requester,
            t.tag,
            t.attr,
            t.tc,
            t.byte_count,
            t.lower_addr
        );
        match r {
            Ok(()) => self.rows += 1,
            Err(e) => self.err = Some(e),
        }
    }
}

/// Checks rows given as fields, whatever file format they come from: known directions and
/// types, numbers in range, non-decreasing timestamps. Errors are messages without a place;
/// the caller adds the file and the line or row.
#[derive(Debug, Clone)]
pub struct RowChecker {
    last_time: f64,
}

impl Default for RowChecker {
    fn default() -> Self {
        RowChecker {
            last_time: f64::NEG_INFINITY,
        }
    }
}

/// The numeric columns after `type`, in [`HEADER`] order, with their largest legal values.
pub const NUMERIC_COLUMNS: [(&str, u64); 8] = [
    ("address", u64::MAX),
    ("length", 1 << 20),
    ("requester", 0xffff),
    ("tag", 1023),
    ("attr", 3),
    ("tc", 7),
    ("byte_count", 1 << 20),
    ("lower_addr", 127),
];

impl RowChecker {
    /// Checks one row: `time_ns`, `dir`, `type` and the eight numeric columns
    /// ([`NUMERIC_COLUMNS`]); `None` numbers were unreadable. `text(0)` gives what stood in
    /// `time_ns`, `text(1 + i)` what stood in numeric column `i` (called only for messages).
    pub fn row(
        &mut self,
        time_ns: Option<f64>,
        dir: &str,
        kind: &str,
        nums: [Option<u64>; 8],
        text: impl Fn(usize) -> String,
    ) -> Result<Tlp, String> {
        let time_ns = time_ns
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| format!("time_ns `{}` is not a non-negative number", text(0)))?;
        if time_ns < self.last_time {
            return Err(format!(
                "time_ns {time_ns} is earlier than the previous row's {}; rows must be in time order",
                self.last_time
            ));
        }
        self.last_time = time_ns;
        let dir = match dir {
            "up" => Dir::Up,
            "down" => Dir::Down,
            other => return Err(format!("dir `{other}`; choose up or down")),
        };
        let kind = Kind::parse(kind).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("type `{kind}`; choose one of {}", names.join(", "))
        })?;
        let mut v = [0u64; 8];
        for (i, (name, max)) in NUMERIC_COLUMNS.iter().enumerate() {
            v[i] = nums[i]
                .filter(|x| x <= max)
                .ok_or_else(|| format!("{name} `{}` is not a number in 0..={max}", text(1 + i)))?;
        }
        Ok(Tlp {
            time_ns,
            dir,
            kind,
            address: v[0],
            length: v[1] as u32,
            requester: v[2] as u16,
            tag: v[3] as u16,
            attr: v[4] as u8,
            tc: v[5] as u8,
            byte_count: v[6] as u32,
            lower_addr: v[7] as u8,
        })
    }
}

impl TraceMeta {
    /// Reads metadata lines (`# link ...`, `# credits ...`, `# nic ...`; others are ignored)
    /// into `self`; errors name the offending line (1-based within `lines`).
    pub fn parse_lines(lines: &str) -> Result<TraceMeta, (usize, String)> {
        let mut meta = TraceMeta::default();
        for (i, l) in lines.lines().enumerate() {
            if let Some(m) = l.trim().strip_prefix('#') {
                meta.apply(m.trim()).map_err(|e| (i + 1, e))?;
            }
        }
        Ok(meta)
    }

    /// Applies one metadata line (without its `#`).
    fn apply(&mut self, m: &str) -> Result<(), String> {
        let mut words = m.split_whitespace();
        let what = words.next().unwrap_or("");
        let mut kv = std::collections::BTreeMap::new();
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                continue;
            };
            let v = parse_u64(v.as_bytes())
                .ok_or_else(|| format!("metadata `{k}`: `{v}` is not a number"))?;
            kv.insert(k.to_string(), v);
        }
        let get = |k: &str| -> Result<u64, String> {
            kv.get(k)
                .copied()
                .ok_or_else(|| format!("`# {what}` line lacks `{k}=`"))
        };
        match what {
            "link" => {
                self.mps = get("mps")? as u32;
                self.mrrs = get("mrrs")? as u32;
                self.rcb = get("rcb")? as u32;
                self.tag_bits = get("tag_bits")? as u32;
                if super::tlp::tag_pool(self.tag_bits).is_none() {
                    return Err("tag_bits must be 5, 8 or 10".into());
                }
                if self.rcb != 64 && self.rcb != 128 {
                    return Err("rcb must be 64 or 128".into());
                }
            }
            "credits" => {
                self.credits = Some((get("ph")? as u32, get("pd")? as u32, get("nph")? as u32))
            }
            "nic" => {
                self.nic = Some(NicMap {
                    bar0: get("bar0")?,
                    tx_ring: get("tx_ring")?,
                    cq_ring: get("cq_ring")?,
                    pkt_buf: get("pkt_buf")?,
                    slots: get("slots")?.max(1) as u32,
                    msi: get("msi")?,
                    devices: get("devices")?.clamp(1, 64) as u32,
                })
            }
            _ => {}
        }
        Ok(())
    }
}

/// Reads a trace row by row, checking its form: the metadata, the header, eleven columns,
/// known directions and types, numbers in range, non-decreasing timestamps.
pub struct TraceReader<R: BufRead> {
    input: R,
    file: String,
    line: usize,
    buf: Vec<u8>,
    check: RowChecker,
    /// The metadata read before the header.
    pub meta: TraceMeta,
}

impl<R: BufRead> TraceReader<R> {
    /// Reads the metadata and the header; `file` names the input in messages.
    pub fn new(input: R, file: &str) -> Result<Self, PcieError> {
        let mut r = TraceReader {
            input,
            file: file.to_string(),
            line: 0,
            buf: Vec::new(),
            check: RowChecker::default(),
            meta: TraceMeta::default(),
        };
        loop {
            if !r.next_line()? {
                return Err(r.err("empty trace: no header line"));
            }
            let text = String::from_utf8_lossy(&r.buf).trim().to_string();
            if let Some(m) = text.strip_prefix('#') {
                r.meta.apply(m.trim()).map_err(|e| r.err(&e))?;
            } else if text == HEADER {
                return Ok(r);
            } else {
                return Err(r.err(&format!("expected the header `{HEADER}`, found `{text}`")));
            }
        }
    }

    fn err(&self, message: &str) -> PcieError {
        PcieError::Trace {
            file: self.file.clone(),
            line: self.line,
            message: message.to_string(),
        }
    }

    fn next_line(&mut self) -> Result<bool, PcieError> {
        self.buf.clear();
        let n = self
            .input
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| PcieError::Io(format!("{}: {e}", self.file)))?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(true)
    }

    /// The next row and its line number, `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<(usize, Tlp)>, PcieError> {
        loop {
            if !self.next_line()? {
                return Ok(None);
            }
            if self.buf.is_empty() || self.buf[0] == b'#' {
                continue;
            }
            break;
        }
        let mut f: [&[u8]; 11] = [&[]; 11];
        let mut n = 0;
        for part in self.buf.split(|&c| c == b',') {
            if n < 11 {
                f[n] = part;
            }
            n += 1;
        }
        if n != 11 {
            return Err(self.err(&format!("{n} columns; a row has 11 ({HEADER})")));
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let time = std::str::from_utf8(f[0])
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let nums = std::array::from_fn(|i| parse_u64(f[i + 3]));
        let row = self.check.row(
            time,
            std::str::from_utf8(f[1]).unwrap_or("(not UTF-8)"),
            std::str::from_utf8(f[2]).unwrap_or("(not UTF-8)"),
            nums,
            |i| text(if i == 0 { f[0] } else { f[i + 2] }),
        );
        match row {
            Ok(t) => Ok(Some((self.line, t))),
            Err(e) => Err(self.err(&e)),
        }
    }
}

/// Decimal or 0x-hex.
fn parse_u64(b: &[u8]) -> Option<u64> {
    let b = b.trim_ascii();
    if let Some(h) = b.strip_prefix(b"0x").or_else(|| b.strip_prefix(b"0X")) {
        if h.is_empty() || h.len() > 16 {
            return None;
        }
        let mut v = 0u64;
        for &c in h {
            v = v * 16 + (c as char).to_digit(16)? as u64;
        }
        Some(v)
    } else {
        if b.is_empty() {
            return None;
        }
        let mut v = 0u64;
        for &c in b {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
        }
        Some(v)
    }
}

/// Reads a whole trace (metadata and rows with their line numbers).
pub fn read_all<R: BufRead>(
    input: R,
    file: &str,
) -> Result<(TraceMeta, Vec<(usize, Tlp)>), PcieError> {
    let mut r = TraceReader::new(input, file)?;
    let mut rows = Vec::new();
    while let Some(row) = r.next_row()? {
        rows.push(row);
    }
    Ok((r.meta, rows))
}

/// Writes rows as a trace into a string (tests, small traces).
pub fn to_csv(meta: &TraceMeta, rows: &[Tlp]) -> String {
    let mut out = Vec::new();
    if let Ok(mut w) = TraceWriter::new(&mut out, meta) {
        for r in rows {
            w.row(r);
        }
        let _ = w.finish();
    }
    String::from_utf8_lossy(&out).into_owned()
}
