//! The PCIe link layer: generations, lanes, encoding, TLP framing, the Ack and UpdateFC
//! latency limits of the base specification, SKP ordered sets, Gen6 FLIT mode, and the
//! pcie-bench closed-form bandwidth model ([`bench`]).

use serde::{Deserialize, Serialize};

use super::{config_err, PcieError};

/// A PCIe generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gen {
    /// 2.5 GT/s, 8b/10b.
    Gen1,
    /// 5 GT/s, 8b/10b.
    Gen2,
    /// 8 GT/s, 128b/130b.
    Gen3,
    /// 16 GT/s, 128b/130b.
    Gen4,
    /// 32 GT/s, 128b/130b.
    Gen5,
    /// 64 GT/s PAM4, FLIT mode (256-byte flits: 236 B TLP, 6 B DLP, 8 B CRC, 6 B FEC).
    Gen6,
}

impl Gen {
    /// Every generation, in order.
    pub const ALL: [Gen; 6] = [
        Gen::Gen1,
        Gen::Gen2,
        Gen::Gen3,
        Gen::Gen4,
        Gen::Gen5,
        Gen::Gen6,
    ];

    /// From 1..=6.
    pub fn from_number(n: u32) -> Result<Gen, PcieError> {
        match n {
            1..=6 => Ok(Gen::ALL[n as usize - 1]),
            _ => Err(config_err("generation", format!("{n}; choose 1 to 6"))),
        }
    }

    /// 1..=6.
    pub fn number(self) -> u32 {
        Gen::ALL.iter().position(|g| *g == self).unwrap_or(0) as u32 + 1
    }

    /// Transfers per second per lane, in GT/s.
    pub fn gts(self) -> f64 {
        [2.5, 5.0, 8.0, 16.0, 32.0, 64.0][self.number() as usize - 1]
    }

    /// Payload bits per transferred bit of the line code (8b/10b, 128b/130b; FLIT mode's
    /// overhead is in the flit, not the line code).
    pub fn encoding(self) -> f64 {
        match self {
            Gen::Gen1 | Gen::Gen2 => 0.8,
            Gen::Gen3 | Gen::Gen4 | Gen::Gen5 => 128.0 / 130.0,
            Gen::Gen6 => 1.0,
        }
    }

    /// Symbol time in ns: 10 UI under 8b/10b, 8 UI otherwise.
    pub fn symbol_ns(self) -> f64 {
        match self {
            Gen::Gen1 | Gen::Gen2 => 10.0 / self.gts(),
            _ => 8.0 / self.gts(),
        }
    }

    /// The receiver's internal delay in the Ack/UpdateFC latency limit, in symbol times
    /// (19 / 70 / 115 for Gen1 / Gen2 / Gen3 and later).
    pub fn internal_delay(self) -> u32 {
        match self {
            Gen::Gen1 => 19,
            Gen::Gen2 => 70,
            _ => 115,
        }
    }

    /// FLIT mode (Gen6).
    pub fn flit(self) -> bool {
        self == Gen::Gen6
    }
}

/// SKP ordered sets: 4 symbols every 1538 (clock compensation), on every lane.
pub const SKP_OVERHEAD: f64 = 4.0 / 1538.0;
/// Bytes of a DLLP on the wire (2 B framing + 4 B DLLP + 2 B CRC).
pub const DLLP_BYTES: u32 = 8;
/// Per-TLP framing outside FLIT mode: Gen3+ 4 B STP token (with the sequence number) + 4 B
/// LCRC; Gen1/2 STP, 2 B sequence number, 4 B LCRC and END, also 8 B.
pub const TLP_FRAMING: u32 = 8;
/// Bytes of TLP space in one 256-byte flit.
pub const FLIT_TLP_BYTES: u32 = 236;
/// Bytes of one flit.
pub const FLIT_BYTES: u32 = 256;

/// Valid maximum payload / read request sizes.
pub const SIZES: [u32; 6] = [128, 256, 512, 1024, 2048, 4096];

/// A configured link: generation, width and the negotiated TLP parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkConfig {
    /// Generation.
    pub gen: Gen,
    /// Lanes: 1, 2, 4, 8, 16 (or 32).
    pub lanes: u32,
    /// Maximum payload size, bytes.
    pub mps: u32,
    /// Maximum read request size, bytes.
    pub mrrs: u32,
    /// Read completion boundary, 64 or 128 bytes.
    pub rcb: u32,
    /// 64-bit addresses (4DW request headers) instead of 32-bit (3DW).
    pub addr64: bool,
    /// ECRC digest (4 B) on every TLP.
    pub ecrc: bool,
}

impl LinkConfig {
    /// pcie-bench's reference: Gen3 x8, MPS 256, MRRS 512, RCB 64, 64-bit addresses, no ECRC.
    pub fn gen3x8() -> Self {
        LinkConfig {
            gen: Gen::Gen3,
            lanes: 8,
            mps: 256,
            mrrs: 512,
            rcb: 64,
            addr64: true,
            ecrc: false,
        }
    }

    /// Checks every field against the specification's choices.
    pub fn check(&self) -> Result<(), PcieError> {
        if ![1, 2, 4, 8, 16, 32].contains(&self.lanes) {
            return Err(config_err(
                "lanes",
                format!("{}; choose 1, 2, 4, 8, 16 or 32", self.lanes),
            ));
        }
        if !SIZES.contains(&self.mps) {
            return Err(config_err(
                "mps",
                format!("{}; choose one of {SIZES:?}", self.mps),
            ));
        }
        if !SIZES.contains(&self.mrrs) {
            return Err(config_err(
                "mrrs",
                format!("{}; choose one of {SIZES:?}", self.mrrs),
            ));
        }
        if self.rcb != 64 && self.rcb != 128 {
            return Err(config_err("rcb", format!("{}; choose 64 or 128", self.rcb)));
        }
        Ok(())
    }

    /// Raw bandwidth after the line code, Gb/s (pcie-bench's "raw").
    pub fn raw_gbps(&self) -> f64 {
        self.gen.gts() * self.gen.encoding() * self.lanes as f64
    }

    /// Nanoseconds per byte on the wire, after the line code and SKP ordered sets (and, in
    /// FLIT mode, the flit's non-TLP bytes).
    pub fn ns_per_byte(&self) -> f64 {
        let mut bytes_per_ns = self.raw_gbps() / 8.0 * (1.0 - SKP_OVERHEAD);
        if self.gen.flit() {
            bytes_per_ns *= FLIT_TLP_BYTES as f64 / FLIT_BYTES as f64;
        }
        1.0 / bytes_per_ns
    }

    /// Header bytes of a memory request (3DW or 4DW).
    pub fn request_header(&self) -> u32 {
        if self.addr64 {
            16
        } else {
            12
        }
    }

    /// Bytes a TLP occupies on the wire: framing (none in FLIT mode, where the flit carries
    /// CRC and sequence numbers), header, payload, optional ECRC.
    pub fn wire_bytes(&self, header: u32, payload: u32) -> u32 {
        let framing = if self.gen.flit() { 0 } else { TLP_FRAMING };
        framing + header + payload + if self.ecrc { 4 } else { 0 }
    }

    /// Wire bytes of a memory write with `payload` bytes.
    pub fn mwr_bytes(&self, payload: u32) -> u32 {
        self.wire_bytes(self.request_header(), payload)
    }

    /// Wire bytes of a memory read request.
    pub fn mrd_bytes(&self) -> u32 {
        self.wire_bytes(self.request_header(), 0)
    }

    /// Wire bytes of a completion with `payload` bytes (3DW header).
    pub fn cpld_bytes(&self, payload: u32) -> u32 {
        self.wire_bytes(12, payload)
    }

    /// The Ack / UpdateFC latency limit of the base specification, in symbol times:
    /// `floor((MPS + 28) * UF / lanes + internal delay)`, UF = 1.4 (<= x4), 2.5 (x8), 3.0
    /// (>= x16) for MPS <= 256, else 1.0 (<= x8) or 2.0.
    pub fn ack_limit_symbols(&self) -> u32 {
        let uf = match (self.mps <= 256, self.lanes) {
            (true, l) if l <= 4 => 1.4,
            (true, 8) => 2.5,
            (true, _) => 3.0,
            (false, l) if l <= 8 => 1.0,
            (false, _) => 2.0,
        };
        ((self.mps + 28) as f64 * uf / self.lanes as f64 + self.gen.internal_delay() as f64).floor()
            as u32
    }

    /// The Ack / UpdateFC latency limit in ns.
    pub fn ack_limit_ns(&self) -> f64 {
        self.ack_limit_symbols() as f64 * self.gen.symbol_ns()
    }
}

/// The pcie-bench closed-form model (its `pcie.py` and `mem_bw.py` equations), reproduced
/// exactly so that its published numbers can be checked; the simulator is compared with it.
pub mod bench {
    use super::{LinkConfig, DLLP_BYTES, SKP_OVERHEAD};

    /// Bandwidth available to TLPs, Gb/s: raw minus one Ack and one UpdateFC DLLP per latency
    /// limit — each billed as `8 / limit` of the link, as pcie-bench does — and SKP sets.
    pub fn tlp_gbps(c: &LinkConfig) -> f64 {
        let limit = c.ack_limit_symbols() as f64;
        let dllp = DLLP_BYTES as f64 / limit;
        c.raw_gbps() * (1.0 - 2.0 * dllp - SKP_OVERHEAD)
    }

    /// Effective bandwidth of a continuous stream of `size`-byte DMA writes, Gb/s.
    pub fn write_gbps(c: &LinkConfig, size: u32) -> f64 {
        let tlps = size.div_ceil(c.mps);
        let raw = tlps * c.mwr_bytes(0) + size;
        tlp_gbps(c) * size as f64 / raw as f64
    }

    /// Effective bandwidth of a continuous stream of `size`-byte DMA reads, Gb/s: completions
    /// fill the receive direction unless the requests run out of transmit bandwidth.
    /// Completions are MPS-sized (`rcb_chunks` false in pcie-bench).
    pub fn read_gbps(c: &LinkConfig, size: u32) -> f64 {
        let tx = (size.div_ceil(c.mrrs) * c.mrd_bytes()) as f64;
        let rx = (size.div_ceil(c.mps) * c.cpld_bytes(0) + size) as f64;
        let avail = tlp_gbps(c);
        // Transactions per second the receive side carries, and what they need to transmit.
        let rx_used = if avail / rx * tx > avail {
            avail / tx * rx
        } else {
            avail
        };
        size as f64 * rx_used / rx
    }
}
