//! The `pcie.dma` design model and the PCIe studies: bandwidth and latency against transfer
//! size for the simulator (wire billing and pcie-bench billing) and the pcie-bench model.

use std::sync::Arc;

use dse::model::{
    Direction, EvalContext, MetricSpec, Model, ModelError, ModelInfo, ParamSpec, Value,
};
use sim::pcie::engine::{simulate, Billing, DmaOp, SimConfig, Workload};
use sim::pcie::link::{bench, Gen, LinkConfig};

/// Area of one SRAM bit with its array overhead, in um^2: a 16 nm 6T cell (0.074 um^2) with
/// 1.5x for periphery. An assumption of this model, not a measurement.
pub const SRAM_UM2_PER_BIT: f64 = 0.074 * 1.5;

/// DMA transfers or a NIC's transmit path over one PCIe link, simulated at TLP granularity.
pub struct PcieDma {
    info: ModelInfo,
}

const SIZES: [&str; 6] = ["128", "256", "512", "1024", "2048", "4096"];

impl PcieDma {
    /// The model.
    pub fn new() -> Self {
        let params = vec![
            ParamSpec::int("gen", 1, 6, 3, "", "PCIe generation (6: 64 GT/s FLIT mode)"),
            ParamSpec::categorical("lanes", &["1", "2", "4", "8", "16"], "8", "link width"),
            ParamSpec::categorical("mps", &SIZES, "256", "maximum payload size, bytes"),
            ParamSpec::categorical("mrrs", &SIZES, "512", "maximum read request size, bytes"),
            ParamSpec::categorical(
                "rcb",
                &["64", "128"],
                "64",
                "read completion boundary, bytes",
            ),
            ParamSpec::categorical(
                "tag_bits",
                &["5", "8", "10"],
                "8",
                "tag field: 32, 256 or 768 outstanding reads",
            ),
            ParamSpec::int(
                "ph",
                0,
                256,
                32,
                "credits",
                "host's posted header credits (0: infinite)",
            ),
            ParamSpec::int(
                "pd",
                0,
                4096,
                256,
                "credits",
                "host's posted data credits, 16 B each (0: infinite)",
            ),
            ParamSpec::int(
                "nph",
                0,
                256,
                32,
                "credits",
                "host's non-posted header credits (0: infinite)",
            ),
            ParamSpec::int("replay_kib", 1, 256, 16, "KiB", "device's replay buffer"),
            ParamSpec::categorical(
                "workload",
                &["read", "write", "readwrite", "nic"],
                "read",
                "DMA reads, writes, both alternating, or a NIC transmitting IMIX packets",
            ),
            ParamSpec::int("size", 1, 65536, 2048, "B", "bytes per DMA transfer"),
            ParamSpec::int(
                "outstanding",
                1,
                256,
                32,
                "",
                "DMA transfers (or NIC ring entries) in flight",
            ),
            ParamSpec::boolean(
                "random",
                false,
                "random (else sequential) addresses in a 64 MiB window",
            ),
            ParamSpec::boolean("iommu", false, "IOMMU translation with a 64-entry IOTLB"),
            ParamSpec::int(
                "ops",
                100,
                10_000_000,
                4000,
                "",
                "transfers (or packets) simulated",
            ),
            ParamSpec::log_real("ber", 1e-16, 1e-5, 1e-16, "", "bit error rate of the link"),
        ];
        let metrics = vec![
            MetricSpec::new("gbps", "Gb/s", Direction::Maximize, "payload bandwidth"),
            MetricSpec::new(
                "lat_p50_ns",
                "ns",
                Direction::Minimize,
                "median transfer (packet) latency",
            ),
            MetricSpec::new(
                "lat_p99_ns",
                "ns",
                Direction::Minimize,
                "99th-percentile transfer (packet) latency",
            ),
            MetricSpec::new(
                "link_util",
                "",
                Direction::Maximize,
                "payload bandwidth over the raw link bandwidth",
            ),
            MetricSpec::new(
                "buffer_kib",
                "KiB",
                Direction::Minimize,
                "receive buffer for the credits, replay buffer and tag table",
            ),
            MetricSpec::new(
                "buffer_mm2",
                "mm2",
                Direction::Minimize,
                "their SRAM area at 0.111 um^2/bit (16 nm, assumed)",
            ),
            MetricSpec::new(
                "stall_frac",
                "",
                Direction::Minimize,
                "share of the run the device waited for credits or tags",
            ),
        ];
        PcieDma {
            info: ModelInfo {
                name: "pcie.dma".into(),
                version: "1".into(),
                summary: "PCIe DMA or NIC transmit over one link, simulated per TLP: bandwidth, latency percentiles, buffer area".into(),
                params,
                metrics,
            },
        }
    }

    /// The simulator configuration and workload a point describes.
    pub fn scenario(&self, p: &[Value], seed: u64) -> Result<(SimConfig, Workload), ModelError> {
        let cat = |i: usize| -> u32 {
            match &p[i] {
                Value::Cat(s) => s.parse().unwrap_or(0),
                _ => 0,
            }
        };
        let num = |i: usize| p[i].as_f64().unwrap_or(f64::NAN);
        let bad = |e: sim::pcie::PcieError| ModelError::Infeasible(e.to_string());
        let mut cfg = SimConfig::gen3x8();
        cfg.link = LinkConfig {
            gen: Gen::from_number(num(0) as u32).map_err(bad)?,
            lanes: cat(1),
            mps: cat(2),
            mrrs: cat(3),
            rcb: cat(4),
            addr64: true,
            ecrc: false,
        };
        cfg.tag_bits = cat(5);
        cfg.host.ph = num(6) as u32;
        cfg.host.pd = num(7) as u32;
        cfg.host.nph = num(8) as u32;
        cfg.replay_bytes = num(9) as u32 * 1024;
        cfg.host.iommu = matches!(p[14], Value::Bool(true));
        cfg.ber = if num(16) <= 1e-16 { 0.0 } else { num(16) };
        cfg.seed = seed;
        let ops = num(15) as u64;
        let outstanding = num(12) as u32;
        let op = match &p[10] {
            Value::Cat(s) if s == "write" => DmaOp::Write,
            Value::Cat(s) if s == "readwrite" => DmaOp::ReadWrite,
            Value::Cat(s) if s == "nic" => {
                return Ok((
                    cfg,
                    Workload::Nic {
                        packets: ops,
                        sizes: Workload::imix(),
                        gap_ns: 0.0,
                        ring: outstanding,
                    },
                ))
            }
            _ => DmaOp::Read,
        };
        let work = Workload::Dma {
            op,
            size: num(11) as u32,
            ops,
            window: 64 << 20,
            random: matches!(p[13], Value::Bool(true)),
            offset: 0,
            outstanding,
        };
        Ok((cfg, work))
    }
}

impl Default for PcieDma {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes of the buffers a configuration needs: the receive buffer behind the advertised
/// credits (16 B per header, 16 B per data credit; an infinite advertisement sized at the
/// largest finite one, 256 headers and 4096 data credits), the replay buffer, and 16 B of
/// state per tag.
pub fn buffer_bytes(cfg: &SimConfig) -> u64 {
    let h = &cfg.host;
    let or_max = |v: u32, max: u32| if v == 0 { max } else { v } as u64;
    let rx = 16 * (or_max(h.ph, 256) + or_max(h.pd, 4096) + or_max(h.nph, 256));
    let tags = sim::pcie::tlp::tag_pool(cfg.tag_bits).unwrap_or(0) as u64 * 16;
    rx + cfg.replay_bytes as u64 + tags
}

impl Model for PcieDma {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn evaluate(&self, p: &[Value], ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let (cfg, work) = self.scenario(p, ctx.seed)?;
        let s = simulate(&cfg, &work, None).map_err(|e| ModelError::Infeasible(e.to_string()))?;
        let bytes = buffer_bytes(&cfg);
        Ok(vec![
            s.gbps(),
            s.latency.quantile(0.5),
            s.latency.quantile(0.99),
            s.gbps() / cfg.link.raw_gbps(),
            bytes as f64 / 1024.0,
            bytes as f64 * 8.0 * SRAM_UM2_PER_BIT * 1e-6,
            ((s.credit_stall_ns + s.tag_stall_ns) / s.elapsed_ns).min(1.0),
        ])
    }
}

/// The PCIe models.
pub fn all() -> Vec<Arc<dyn Model>> {
    vec![Arc::new(PcieDma::new())]
}

/// One transfer size of the bandwidth and latency curves.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    /// Bytes per transfer.
    pub size: u32,
    /// pcie-bench model, writes and reads, Gb/s.
    pub bench_write: f64,
    /// pcie-bench model, reads.
    pub bench_read: f64,
    /// Simulator billing DLLPs like pcie-bench, writes and reads (link-bound: no credit, tag or
    /// host limits).
    pub sim_bench_write: f64,
    /// As above, reads.
    pub sim_bench_read: f64,
    /// Simulator billing DLLPs on the wire, with the default host, credits and 8-bit tags.
    pub sim_write: f64,
    /// As above, reads.
    pub sim_read: f64,
    /// Median read latency, one transfer at a time, ns.
    pub read_lat_ns: f64,
    /// 99th percentile of the same.
    pub read_lat_p99_ns: f64,
    /// Median write latency (to commit at the host), one at a time, ns.
    pub write_lat_ns: f64,
}

/// Bandwidth and latency against transfer size on `link` (64 B to 4 KB in 64-byte steps to
/// 256 B, then powers of two and midpoints). Each bandwidth point moves `mib` MiB, so that the
/// first transfer's latency is amortised.
pub fn curves(link: LinkConfig, mib: u64) -> Result<Vec<CurvePoint>, sim::pcie::PcieError> {
    let sizes = [
        64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096,
    ];
    let mut real = SimConfig::gen3x8();
    real.link = link;
    let mut ideal = real.clone();
    ideal.billing = Billing::Bench;
    ideal.tag_bits = 10;
    ideal.host.ph = 0;
    ideal.host.nph = 0;
    ideal.host.mem_gbs = 1000.0;
    ideal.host.rmw_ns = 0.0;
    ideal.replay_bytes = 1 << 20;
    let bw = |cfg: &SimConfig, op, size: u32| -> Result<f64, sim::pcie::PcieError> {
        let ops = (mib << 20) / size as u64;
        Ok(simulate(cfg, &Workload::dma(op, size, ops.max(100), 64), None)?.gbps())
    };
    sizes
        .iter()
        .map(|&size| {
            let lat_r = simulate(&real, &Workload::dma(DmaOp::Read, size, 2000, 1), None)?;
            let lat_w = simulate(&real, &Workload::dma(DmaOp::Write, size, 2000, 1), None)?;
            Ok(CurvePoint {
                size,
                bench_write: bench::write_gbps(&link, size),
                bench_read: bench::read_gbps(&link, size),
                sim_bench_write: bw(&ideal, DmaOp::Write, size)?,
                sim_bench_read: bw(&ideal, DmaOp::Read, size)?,
                sim_write: bw(&real, DmaOp::Write, size)?,
                sim_read: bw(&real, DmaOp::Read, size)?,
                read_lat_ns: lat_r.latency.quantile(0.5),
                read_lat_p99_ns: lat_r.latency.quantile(0.99),
                write_lat_ns: lat_w.latency.quantile(0.5),
            })
        })
        .collect()
}

/// The curves as a CSV table.
pub fn curves_csv(points: &[CurvePoint]) -> String {
    let mut s = String::from("size,bench_write_gbps,bench_read_gbps,sim_bench_write_gbps,sim_bench_read_gbps,sim_write_gbps,sim_read_gbps,read_lat_p50_ns,read_lat_p99_ns,write_lat_p50_ns\n");
    for p in points {
        s += &format!(
            "{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.1},{:.1},{:.1}\n",
            p.size,
            p.bench_write,
            p.bench_read,
            p.sim_bench_write,
            p.sim_bench_read,
            p.sim_write,
            p.sim_read,
            p.read_lat_ns,
            p.read_lat_p99_ns,
            p.write_lat_ns
        );
    }
    s
}

/// The curves as a markdown table.
pub fn curves_markdown(link: &LinkConfig, points: &[CurvePoint]) -> String {
    let mut s = format!(
        "PCIe Gen{} x{}, MPS {}, MRRS {}, RCB {}, {}-bit addresses. Bandwidth in Gb/s of payload; \
         `bench`: the pcie-bench equations; `sim/bench`: the simulator billing DLLPs as pcie-bench \
         does, link-bound; `sim`: the simulator billing DLLPs on the wire, with the default host \
         (350 ns to the LLC, 20 GB/s), 32/256/32 credits and 8-bit tags. Latency: one transfer at a time.\n\n\
         | size B | bench write | sim/bench write | sim write | bench read | sim/bench read | sim read | read p50 ns | read p99 ns | write p50 ns |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        link.gen.number(),
        link.lanes,
        link.mps,
        link.mrrs,
        link.rcb,
        if link.addr64 { 64 } else { 32 }
    );
    for p in points {
        s += &format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} |\n",
            p.size,
            p.bench_write,
            p.sim_bench_write,
            p.sim_write,
            p.bench_read,
            p.sim_bench_read,
            p.sim_read,
            p.read_lat_ns,
            p.read_lat_p99_ns,
            p.write_lat_ns
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_point_simulates() {
        let m = PcieDma::new();
        let p = m.info().point_with(&["ops=500".into()]).unwrap();
        let v = m.evaluate(&p, &EvalContext { seed: 1 }).unwrap();
        assert!(v[0] > 20.0 && v[0] < 63.0, "{v:?}");
        assert!(v[1] > 350.0 && v[2] >= v[1]);
        // 32 + 256 + 32 credits of 16 B, 16 KiB replay, 256 tags of 16 B.
        assert!((v[4] - (16.0 * 320.0 + 16384.0 + 4096.0) / 1024.0).abs() < 1e-9);
        let nic = m
            .info()
            .point_with(&["workload=nic".into(), "ops=300".into()])
            .unwrap();
        assert!(m.evaluate(&nic, &EvalContext { seed: 1 }).unwrap()[0] > 1.0);
        let bad = m
            .info()
            .point_with(&["mps=128".into(), "pd=4".into()])
            .unwrap();
        assert!(matches!(
            m.evaluate(&bad, &EvalContext { seed: 1 }),
            Err(ModelError::Infeasible(_))
        ));
    }

    #[test]
    fn the_curves_follow_pcie_bench_where_the_simulator_bills_like_it() {
        let pts = curves(LinkConfig::gen3x8(), 4).unwrap();
        for p in &pts {
            assert!(
                (p.sim_bench_write / p.bench_write - 1.0).abs() < 0.01,
                "{p:?}"
            );
            assert!(
                (p.sim_bench_read / p.bench_read - 1.0).abs() < 0.01,
                "{p:?}"
            );
        }
        assert!(pts.windows(2).all(|w| w[1].read_lat_ns >= w[0].read_lat_ns));
    }
}
