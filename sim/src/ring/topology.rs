//! Interconnect topologies: directed links with a bandwidth per direction, and the route of a
//! transfer between two devices.

use super::RingError;

/// How the devices are connected. Every physical link is full duplex: it is modelled as two
/// directed links, each with the link bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Topology {
    /// NVLink through NVSwitch: every device has one port into a non-blocking switch (up and
    /// down direction); any pair talks at the port bandwidth, contention only at the ports.
    NvSwitch,
    /// Direct point-to-point link between every pair of devices (the fully connected mesh
    /// TokenRing assumes).
    FullMesh,
    /// PCIe tree: devices under switches of `per_switch` ports, the switches under one root
    /// complex. A transfer between switches crosses both switches' upstream links (shared by
    /// all their devices); `root_factor` scales the upstream bandwidth relative to the device
    /// links (1.0: the same x16 link).
    PcieTree {
        /// Devices per switch.
        per_switch: usize,
        /// Upstream link bandwidth over device link bandwidth.
        root_factor: f64,
    },
    /// Bidirectional ring: device i links to i+1 and i−1; transfers take the shorter way.
    Ring,
    /// 2-D torus of `rows` x (n / rows) with wrap-around links; dimension-order routing
    /// (along the row first, then the column, each the shorter way).
    Torus2d {
        /// Rows of the torus (divides the device count).
        rows: usize,
    },
}

impl Topology {
    /// Parses `nvswitch`, `mesh`, `pcie` (4 devices per switch, upstream as fast as a device
    /// link), `pcie:K` or `pcie:K:F`, `ring`, `torus` (as square as possible) or `torus:R`.
    pub fn parse(s: &str) -> Result<Topology, RingError> {
        let bad = || {
            RingError::Config {
            field: "topology".into(),
            why: format!(
                "`{s}` is not a topology (valid: nvswitch, mesh, pcie, pcie:PER_SWITCH, pcie:PER_SWITCH:ROOT_FACTOR, ring, torus, torus:ROWS)"
            ),
        }
        };
        let mut parts = s.split(':');
        let head = parts.next().unwrap_or("");
        let rest: Vec<&str> = parts.collect();
        let num = |t: &str| t.parse::<usize>().ok().filter(|&v| v > 0);
        match (head, rest.as_slice()) {
            ("nvswitch", []) => Ok(Topology::NvSwitch),
            ("mesh", []) => Ok(Topology::FullMesh),
            ("ring", []) => Ok(Topology::Ring),
            ("pcie", []) => Ok(Topology::PcieTree {
                per_switch: 4,
                root_factor: 1.0,
            }),
            ("pcie", [k]) => Ok(Topology::PcieTree {
                per_switch: num(k).ok_or_else(bad)?,
                root_factor: 1.0,
            }),
            ("pcie", [k, f]) => Ok(Topology::PcieTree {
                per_switch: num(k).ok_or_else(bad)?,
                root_factor: f
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(bad)?,
            }),
            ("torus", []) => Ok(Topology::Torus2d { rows: 0 }),
            ("torus", [r]) => Ok(Topology::Torus2d {
                rows: num(r).ok_or_else(bad)?,
            }),
            _ => Err(bad()),
        }
    }

    /// Short name.
    pub fn label(&self) -> String {
        match self {
            Topology::NvSwitch => "nvswitch".into(),
            Topology::FullMesh => "mesh".into(),
            Topology::PcieTree {
                per_switch,
                root_factor,
            } => format!("pcie:{per_switch}:{root_factor}"),
            Topology::Ring => "ring".into(),
            Topology::Torus2d { rows } => format!("torus:{rows}"),
        }
    }
}

/// One directed link.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Link {
    /// Readable name, e.g. `gpu3->sw`.
    pub name: String,
    /// Bandwidth, bytes per microsecond (= MB/s).
    pub bytes_per_us: f64,
}

/// A topology instantiated for `n` devices: its directed links and routes.
#[derive(Debug, Clone)]
pub struct Network {
    /// Devices.
    pub n: usize,
    /// Directed links.
    pub links: Vec<Link>,
    /// Routes: `routes[src * n + dst]` lists the links crossed, in order.
    routes: Vec<Vec<usize>>,
    /// Per-hop latency, µs.
    pub hop_latency_us: f64,
}

impl Network {
    /// Builds the links and routes of `topo` for `n` devices with `gbs` GB/s per direction per
    /// device link and `hop_latency_us` per link crossed.
    pub fn new(
        topo: Topology,
        n: usize,
        gbs: f64,
        hop_latency_us: f64,
    ) -> Result<Network, RingError> {
        if !(1..=1024).contains(&n) {
            return Err(RingError::Config {
                field: "devices".into(),
                why: format!("{n} devices (valid: 1 to 1024)"),
            });
        }
        if !(gbs.is_finite() && gbs > 0.0) {
            return Err(RingError::Config {
                field: "link_gbs".into(),
                why: format!("{gbs} must be a positive bandwidth in GB/s"),
            });
        }
        if !(hop_latency_us.is_finite() && hop_latency_us >= 0.0) {
            return Err(RingError::Config {
                field: "hop_latency_us".into(),
                why: format!("{hop_latency_us} must be >= 0"),
            });
        }
        let bw = gbs * 1e3; // GB/s = 1e9 B/s = 1e3 B/us
        let mut links = Vec::new();
        let mut add = |name: String, bytes_per_us: f64| {
            links.push(Link { name, bytes_per_us });
            links.len() - 1
        };
        let mut routes = vec![Vec::new(); n * n];
        match topo {
            Topology::NvSwitch => {
                let up: Vec<usize> = (0..n).map(|i| add(format!("gpu{i}->sw"), bw)).collect();
                let down: Vec<usize> = (0..n).map(|i| add(format!("sw->gpu{i}"), bw)).collect();
                for s in 0..n {
                    for d in 0..n {
                        if s != d {
                            routes[s * n + d] = vec![up[s], down[d]];
                        }
                    }
                }
            }
            Topology::FullMesh => {
                for s in 0..n {
                    for d in 0..n {
                        if s != d {
                            routes[s * n + d] = vec![add(format!("gpu{s}->gpu{d}"), bw)];
                        }
                    }
                }
            }
            Topology::PcieTree {
                per_switch,
                root_factor,
            } => {
                let switches = n.div_ceil(per_switch);
                let up: Vec<usize> = (0..n)
                    .map(|i| add(format!("gpu{i}->sw{}", i / per_switch), bw))
                    .collect();
                let down: Vec<usize> = (0..n)
                    .map(|i| add(format!("sw{}->gpu{i}", i / per_switch), bw))
                    .collect();
                let sw_up: Vec<usize> = (0..switches)
                    .map(|w| add(format!("sw{w}->root"), bw * root_factor))
                    .collect();
                let sw_down: Vec<usize> = (0..switches)
                    .map(|w| add(format!("root->sw{w}"), bw * root_factor))
                    .collect();
                for s in 0..n {
                    for d in 0..n {
                        let (ws, wd) = (s / per_switch, d / per_switch);
                        routes[s * n + d] = if s == d {
                            vec![]
                        } else if ws == wd {
                            vec![up[s], down[d]]
                        } else {
                            vec![up[s], sw_up[ws], sw_down[wd], down[d]]
                        };
                    }
                }
            }
            Topology::Ring => {
                let fwd: Vec<usize> = (0..n)
                    .map(|i| add(format!("gpu{i}->gpu{}", (i + 1) % n), bw))
                    .collect();
                let bwd: Vec<usize> = (0..n)
                    .map(|i| add(format!("gpu{i}->gpu{}", (i + n - 1) % n), bw))
                    .collect();
                for s in 0..n {
                    for d in 0..n {
                        routes[s * n + d] = ring_path(s, d, n, &fwd, &bwd);
                    }
                }
            }
            Topology::Torus2d { rows } => {
                let rows = if rows == 0 { squarest(n) } else { rows };
                if !n.is_multiple_of(rows) {
                    return Err(RingError::Config {
                        field: "topology".into(),
                        why: format!("torus rows {rows} must divide the device count {n}"),
                    });
                }
                let cols = n / rows;
                // Device i sits at (i / cols, i % cols).
                let at = |r: usize, c: usize| r * cols + c;
                let mut east = vec![0; n];
                let mut west = vec![0; n];
                let mut south = vec![0; n];
                let mut north = vec![0; n];
                for r in 0..rows {
                    for c in 0..cols {
                        let i = at(r, c);
                        east[i] = add(format!("gpu{i}->gpu{}", at(r, (c + 1) % cols)), bw);
                        west[i] = add(format!("gpu{i}->gpu{}", at(r, (c + cols - 1) % cols)), bw);
                        south[i] = add(format!("gpu{i}->gpu{}", at((r + 1) % rows, c)), bw);
                        north[i] = add(format!("gpu{i}->gpu{}", at((r + rows - 1) % rows, c)), bw);
                    }
                }
                for s in 0..n {
                    for d in 0..n {
                        let (sr, sc) = (s / cols, s % cols);
                        let (dr, dc) = (d / cols, d % cols);
                        // Along the row (columns change), then along the column.
                        let row = |dir: &[usize]| dir[sr * cols..(sr + 1) * cols].to_vec();
                        let mut path = ring_path(sc, dc, cols, &row(&east), &row(&west));
                        let col_fwd: Vec<usize> = (0..rows).map(|r| south[at(r, dc)]).collect();
                        let col_bwd: Vec<usize> = (0..rows).map(|r| north[at(r, dc)]).collect();
                        path.extend(ring_path(sr, dr, rows, &col_fwd, &col_bwd));
                        routes[s * n + d] = path;
                    }
                }
            }
        }
        Ok(Network {
            n,
            links,
            routes,
            hop_latency_us,
        })
    }

    /// Links crossed from `src` to `dst` (empty when they are the same device).
    pub fn route(&self, src: usize, dst: usize) -> &[usize] {
        &self.routes[src * self.n + dst]
    }
}

/// Shorter way around a ring of `n` positions from `s` to `d`; `fwd[i]` is the link from i to
/// i+1, `bwd[i]` from i to i−1. Ties go forward.
fn ring_path(s: usize, d: usize, n: usize, fwd: &[usize], bwd: &[usize]) -> Vec<usize> {
    let ahead = (d + n - s) % n;
    let mut path = Vec::new();
    if ahead == 0 {
        return path;
    }
    if ahead <= n - ahead {
        for k in 0..ahead {
            path.push(fwd[(s + k) % n]);
        }
    } else {
        for k in 0..n - ahead {
            path.push(bwd[(s + n - k) % n]);
        }
    }
    path
}

/// Largest divisor of `n` not above its square root.
fn squarest(n: usize) -> usize {
    (1..=n)
        .take_while(|r| r * r <= n)
        .filter(|r| n.is_multiple_of(*r))
        .last()
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_topology() {
        let net = Network::new(Topology::NvSwitch, 8, 450.0, 1.0).unwrap();
        assert_eq!(net.links.len(), 16);
        assert_eq!(net.route(2, 5).len(), 2);
        assert!(net.route(3, 3).is_empty());

        let ring = Network::new(Topology::Ring, 8, 100.0, 1.0).unwrap();
        assert_eq!(ring.route(0, 3).len(), 3);
        assert_eq!(ring.route(0, 6).len(), 2); // the other way round
        assert_eq!(ring.links[ring.route(0, 7)[0]].name, "gpu0->gpu7");

        let torus = Network::new(Topology::Torus2d { rows: 0 }, 16, 100.0, 1.0).unwrap();
        // 4 x 4: (0,0) -> (2,3): 1 hop west along the row, 2 hops along the column.
        assert_eq!(torus.route(0, 11).len(), 3);
        let names: Vec<&str> = torus
            .route(0, 11)
            .iter()
            .map(|&l| torus.links[l].name.as_str())
            .collect();
        assert_eq!(names, ["gpu0->gpu3", "gpu3->gpu7", "gpu7->gpu11"]);

        let pcie = Network::new(
            Topology::PcieTree {
                per_switch: 2,
                root_factor: 1.0,
            },
            4,
            25.0,
            1.0,
        )
        .unwrap();
        assert_eq!(pcie.route(0, 1).len(), 2);
        assert_eq!(pcie.route(1, 2).len(), 4);
        assert!((pcie.links[0].bytes_per_us - 25e3).abs() < 1e-9);
    }

    #[test]
    fn bad_topologies_say_what_is_valid() {
        for s in ["star", "pcie:0", "torus:x", "pcie:4:-1"] {
            let e = Topology::parse(s).unwrap_err().to_string();
            assert!(e.contains("valid: nvswitch"), "{e}");
        }
        assert_eq!(
            Topology::parse("torus:2").unwrap(),
            Topology::Torus2d { rows: 2 }
        );
        let e = Network::new(Topology::Torus2d { rows: 3 }, 8, 1.0, 0.0).unwrap_err();
        assert!(e.to_string().contains("must divide"), "{e}");
        assert!(Network::new(Topology::Ring, 0, 1.0, 0.0).is_err());
        assert!(Network::new(Topology::Ring, 4, 0.0, 0.0).is_err());
    }
}
