//! Transaction Layer Packets: kinds, attributes, and the splitting rules (MPS, MRRS, the 4 KB
//! boundary, read completion boundaries).

use serde::{Deserialize, Serialize};

/// Direction on the observed link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dir {
    /// Device to host (upstream).
    Up,
    /// Host to device (downstream).
    Down,
}

impl Dir {
    /// `up` or `down`.
    pub fn name(self) -> &'static str {
        match self {
            Dir::Up => "up",
            Dir::Down => "down",
        }
    }

    /// The other direction.
    pub fn reverse(self) -> Dir {
        match self {
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
        }
    }
}

/// What a trace row carries: a TLP, or an UpdateFC DLLP returning credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// Memory read request (non-posted).
    MRd,
    /// Memory write request (posted), MSIs included.
    MWr,
    /// Completion with data.
    CplD,
    /// Completion without data.
    Cpl,
    /// Message request (posted).
    Msg,
    /// UpdateFC for posted credits (`length` = data credits, `byte_count` = header credits).
    FcP,
    /// UpdateFC for non-posted credits.
    FcNp,
}

impl Kind {
    /// Every kind, in trace-code order.
    pub const ALL: [Kind; 7] = [
        Kind::MRd,
        Kind::MWr,
        Kind::CplD,
        Kind::Cpl,
        Kind::Msg,
        Kind::FcP,
        Kind::FcNp,
    ];

    /// The name used in traces.
    pub fn name(self) -> &'static str {
        match self {
            Kind::MRd => "MRd",
            Kind::MWr => "MWr",
            Kind::CplD => "CplD",
            Kind::Cpl => "Cpl",
            Kind::Msg => "Msg",
            Kind::FcP => "UpdateFC-P",
            Kind::FcNp => "UpdateFC-NP",
        }
    }

    /// Parses a trace name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Posted requests (MWr, Msg).
    pub fn posted(self) -> bool {
        matches!(self, Kind::MWr | Kind::Msg)
    }

    /// Completions (CplD, Cpl).
    pub fn completion(self) -> bool {
        matches!(self, Kind::CplD | Kind::Cpl)
    }

    /// A credit-return DLLP, not a TLP.
    pub fn dllp(self) -> bool {
        matches!(self, Kind::FcP | Kind::FcNp)
    }
}

/// Attribute bit: relaxed ordering.
pub const ATTR_RO: u8 = 0b01;
/// Attribute bit: ID-based ordering.
pub const ATTR_IDO: u8 = 0b10;

/// One trace row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tlp {
    /// Start of transmission at the observation point, ns.
    pub time_ns: f64,
    /// Direction.
    pub dir: Dir,
    /// Kind.
    pub kind: Kind,
    /// Address (requests) or 0.
    pub address: u64,
    /// Payload bytes (MWr, CplD), requested bytes (MRd); data credits for UpdateFC.
    pub length: u32,
    /// Requester ID (bus/device/function) of the request, also carried by its completions.
    pub requester: u16,
    /// Tag of a non-posted request and its completions.
    pub tag: u16,
    /// Attribute bits ([`ATTR_RO`], [`ATTR_IDO`]).
    pub attr: u8,
    /// Traffic class 0..=7.
    pub tc: u8,
    /// Completions: bytes still to be returned including this one; UpdateFC: header credits.
    pub byte_count: u32,
    /// Completions: the low 7 bits of the address of the first byte returned.
    pub lower_addr: u8,
}

impl Tlp {
    /// A request (MRd, MWr, Msg) with no completion fields.
    pub fn request(
        time_ns: f64,
        dir: Dir,
        kind: Kind,
        address: u64,
        length: u32,
        requester: u16,
        tag: u16,
    ) -> Tlp {
        Tlp {
            time_ns,
            dir,
            kind,
            address,
            length,
            requester,
            tag,
            attr: 0,
            tc: 0,
            byte_count: 0,
            lower_addr: 0,
        }
    }
}

/// Bytes from `addr` to the next 4 KB boundary.
pub fn to_4k(addr: u64) -> u64 {
    4096 - (addr & 4095)
}

/// Whether `[addr, addr + len)` crosses a 4 KB boundary.
pub fn crosses_4k(addr: u64, len: u32) -> bool {
    len > 0 && (addr & !4095) != ((addr + len as u64 - 1) & !4095)
}

/// Splits a transfer into requests of at most `max` bytes that never cross a 4 KB boundary:
/// `(address, length)` pairs in address order.
pub fn split_requests(addr: u64, len: u64, max: u32) -> impl Iterator<Item = (u64, u32)> {
    let end = addr + len;
    let mut a = addr;
    std::iter::from_fn(move || {
        if a >= end {
            return None;
        }
        let n = (end - a).min(max as u64).min(to_4k(a));
        let r = (a, n as u32);
        a += n;
        Some(r)
    })
}

/// Splits the completion of a read of `len` bytes at `addr` the way completers do: every
/// completion but the last ends on a read completion boundary; each carries at most `mps`
/// bytes (`mps` and `rcb` multiples, so a completion ends on an RCB boundary whenever it is
/// MPS-sized). Yields `(address, length, byte_count)`.
pub fn split_completions(
    addr: u64,
    len: u32,
    rcb: u32,
    mps: u32,
) -> impl Iterator<Item = (u64, u32, u32)> {
    let end = addr + len as u64;
    let mut a = addr;
    std::iter::from_fn(move || {
        if a >= end {
            return None;
        }
        // Up to the RCB boundary at or after a + mps - (a % rcb) ... : the largest chunk that
        // ends on an RCB boundary and holds at most `mps` bytes.
        let limit = a + mps as u64;
        let boundary = limit - (limit % rcb as u64);
        let stop = if boundary > a {
            boundary.min(end)
        } else {
            end.min(limit)
        };
        let r = (a, (stop - a) as u32, (end - a) as u32);
        a = stop;
        Some(r)
    })
}

/// Tags usable by a requester with a `bits`-bit tag field (5 -> 32, 8 -> 256, 10 -> 768: the
/// 10-bit tags whose upper two bits are zero are reserved for 8-bit compatibility).
pub fn tag_pool(bits: u32) -> Option<u16> {
    match bits {
        5 => Some(32),
        8 => Some(256),
        10 => Some(768),
        _ => None,
    }
}
