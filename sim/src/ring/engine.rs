//! Event-driven timing of a [`Plan`] on a [`Network`]: each device has one in-order compute
//! stream; transfers are fluid flows that share every link they cross max-min fairly, so
//! contention on shared links (PCIe upstream ports, torus hops, a device's single NVSwitch
//! port) stretches them; computation overlaps communication as the implementations do, with
//! each step ending when the device's sends and receives of the previous step are done.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::schedule::{AttnShape, Call, Payload, Plan};
use super::topology::{Network, Topology};
use super::RingError;

/// Time of the computation on one device.
pub trait ComputeModel {
    /// One attention kernel launch, µs.
    fn call_us(&self, shape: &AttnShape, call: &Call) -> f64;
    /// Merging a partial result of `rows` query tokens into the accumulator, µs.
    fn merge_us(&self, shape: &AttnShape, rows: usize) -> f64;
    /// Converting the fp32 accumulator of `rows` query tokens to the output type at the end,
    /// µs; by default, what a merge of that many rows costs.
    fn finalize_us(&self, shape: &AttnShape, rows: usize) -> f64 {
        self.merge_us(shape, rows)
    }
}

/// Bytes the final conversion reads and writes for `rows` query tokens: the fp32 accumulator
/// in, the output out.
pub fn finalize_bytes(shape: &AttnShape, rows: usize) -> f64 {
    (rows * shape.heads * shape.head_dim * (4 + shape.elem_bytes)) as f64
}

/// A roofline compute model: launch overhead plus FLOPs at a sustained rate; merges at a
/// memory bandwidth. Handy for tests and for devices without a calibrated kernel model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roofline {
    /// Sustained attention throughput, TFLOP/s.
    pub tflops: f64,
    /// Per-launch overhead, µs.
    pub launch_us: f64,
    /// Memory bandwidth for merges, GB/s.
    pub mem_gbs: f64,
}

/// Bytes a merge reads and writes for `rows` query tokens: fp32 accumulator read and write,
/// the partial output, and the log-sum-exps.
pub fn merge_bytes(shape: &AttnShape, rows: usize) -> f64 {
    (rows * shape.heads * (shape.head_dim * (4 + 4 + shape.elem_bytes) + 12)) as f64
}

impl ComputeModel for Roofline {
    fn call_us(&self, shape: &AttnShape, call: &Call) -> f64 {
        self.launch_us + shape.flops(call.pairs()) / (self.tflops * 1e6)
    }
    fn merge_us(&self, shape: &AttnShape, rows: usize) -> f64 {
        self.launch_us + merge_bytes(shape, rows) / (self.mem_gbs * 1e3)
    }
    fn finalize_us(&self, shape: &AttnShape, rows: usize) -> f64 {
        self.launch_us + finalize_bytes(shape, rows) / (self.mem_gbs * 1e3)
    }
}

/// The machine a plan runs on.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Cluster {
    /// Topology.
    pub topology: Topology,
    /// Bandwidth of a device link, GB/s per direction.
    pub link_gbs: f64,
    /// Latency per link crossed, µs.
    pub hop_latency_us: f64,
    /// Fixed software cost per transfer (launch, handshake), µs.
    pub msg_overhead_us: f64,
    /// Share of its fair rate a transfer gets while its sender or receiver is computing
    /// (1: communication fully overlaps compute; below 1: the communication kernels compete
    /// with the attention kernels for multiprocessors).
    pub overlap: f64,
}

/// What an interval of the timeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Activity {
    /// Attention kernels (and, for K/V-moving schedules, the merge into the accumulator).
    Compute,
    /// Merging a received partial result.
    Merge,
    /// A transfer, drawn on the sender's row.
    Send,
    /// The accumulator's final conversion to the output type (not counted as compute, as the
    /// measured runs count it).
    Finalize,
}

/// One interval of the timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Interval {
    /// Device (the sender for transfers).
    pub dev: usize,
    /// Activity.
    pub activity: Activity,
    /// Step of the plan.
    pub step: usize,
    /// Start, µs.
    pub start_us: f64,
    /// End, µs.
    pub end_us: f64,
    /// Receiver of a transfer.
    pub peer: Option<usize>,
    /// Bytes moved (transfers).
    pub bytes: u64,
}

/// Simulated execution of a plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Timeline {
    /// End to end, µs.
    pub total_us: f64,
    /// Every compute, merge and transfer interval.
    pub intervals: Vec<Interval>,
    /// When each step (and the tail of partial sends, for Q-moving schedules) finished, µs.
    pub step_end_us: Vec<f64>,
    /// Busy time of each device's compute stream, µs.
    pub compute_busy_us: Vec<f64>,
    /// Bytes per directed link, by link name.
    pub link_bytes: Vec<(String, u64)>,
    /// Bytes of all transfers.
    pub bytes_moved: u64,
}

impl Timeline {
    /// The busiest device's compute time: the schedule's time with free communication.
    pub fn compute_only_us(&self) -> f64 {
        self.compute_busy_us.iter().copied().fold(0.0, f64::max)
    }
    /// Communication not hidden behind computation: total minus the busiest device's compute.
    pub fn exposed_comm_us(&self) -> f64 {
        (self.total_us - self.compute_only_us()).max(0.0)
    }
    /// Duration of each step (the differences of [`Timeline::step_end_us`]).
    pub fn step_us(&self) -> Vec<f64> {
        let mut prev = 0.0;
        self.step_end_us
            .iter()
            .map(|&e| {
                let d = (e - prev).max(0.0);
                prev = prev.max(e);
                d
            })
            .collect()
    }
    /// Most bytes on any one link direction.
    pub fn max_link_bytes(&self) -> u64 {
        self.link_bytes.iter().map(|l| l.1).max().unwrap_or(0)
    }
}

enum Kind {
    Compute {
        dev: usize,
        us: f64,
        activity: Activity,
    },
    Transfer {
        src: usize,
        dst: usize,
        bytes: u64,
    },
}

struct Task {
    kind: Kind,
    step: usize,
    deps: Vec<usize>,
}

/// Turns the plan into tasks with dependencies.
fn tasks(plan: &Plan, model: &dyn ComputeModel) -> Vec<Task> {
    let n = plan.devices;
    let shape = &plan.shape;
    let mut out: Vec<Task> = Vec::new();
    // Which task delivered (payload kind, owner) to a device: (dev, is_q, owner) -> task.
    let mut delivered = std::collections::HashMap::new();
    let mut last_compute: Vec<Option<usize>> = vec![None; n];
    let mut work_task = std::collections::HashMap::new(); // (step, dev) -> task
    let mut work_rows = std::collections::HashMap::new(); // (step, dev) -> partial rows
    let mut comm_of_step: Vec<Vec<Vec<usize>>> = vec![vec![Vec::new(); n]; plan.steps + 2];
    let mut merged_once = vec![false; n];
    let max_step = plan.transfers.iter().map(|t| t.step).max().unwrap_or(0);
    let mut wi = 0;
    let mut ti = 0;
    for s in 0..=max_step.max(plan.steps - 1) {
        // Work of step s: waits for its data and for the device's communication of step s−1.
        while wi < plan.works.len() && plan.works[wi].step == s {
            let w = &plan.works[wi];
            let mut deps: Vec<usize> = last_compute[w.dev].into_iter().collect();
            if s > 0 {
                deps.extend(&comm_of_step[s - 1][w.dev]);
            }
            for (is_q, owner) in [(true, w.q_owner), (false, w.kv_owner)] {
                if owner != w.dev {
                    deps.push(delivered[&(w.dev, is_q, owner)]);
                }
            }
            let mut us: f64 = w.calls.iter().map(|c| model.call_us(shape, c)).sum();
            // K/V-moving schedules merge into the local accumulator after every block but
            // the first.
            if !plan.schedule.moves_q() {
                if merged_once[w.dev] {
                    us += model.merge_us(shape, w.rows);
                }
                merged_once[w.dev] = true;
            }
            out.push(Task {
                kind: Kind::Compute {
                    dev: w.dev,
                    us,
                    activity: Activity::Compute,
                },
                step: s,
                deps,
            });
            last_compute[w.dev] = Some(out.len() - 1);
            work_task.insert((s, w.dev), out.len() - 1);
            work_rows.insert((s, w.dev), w.rows);
            wi += 1;
        }
        // Transfers issued in step s.
        let mut merges = Vec::new();
        while ti < plan.transfers.len() && plan.transfers[ti].step == s {
            let t = &plan.transfers[ti];
            let mut deps = Vec::new();
            if s > 0 {
                deps.extend(&comm_of_step[s - 1][t.src]);
                if let Some(&w) = work_task.get(&(s - 1, t.src)) {
                    deps.push(w);
                }
            }
            match t.payload {
                Payload::Q { owner } | Payload::Kv { owner } if owner != t.src => {
                    let is_q = matches!(t.payload, Payload::Q { .. });
                    deps.push(delivered[&(t.src, is_q, owner)]);
                }
                Payload::Partial { from, step, .. } => deps.push(work_task[&(step, from)]),
                _ => {}
            }
            out.push(Task {
                kind: Kind::Transfer {
                    src: t.src,
                    dst: t.dst,
                    bytes: t.bytes,
                },
                step: s,
                deps,
            });
            let id = out.len() - 1;
            comm_of_step[s][t.src].push(id);
            comm_of_step[s][t.dst].push(id);
            match t.payload {
                Payload::Q { owner } => {
                    delivered.insert((t.dst, true, owner), id);
                }
                Payload::Kv { owner } => {
                    delivered.insert((t.dst, false, owner), id);
                }
                Payload::Partial {
                    q_owner,
                    from,
                    step,
                } => {
                    merges.push((q_owner, id, work_rows[&(step, from)]));
                }
            }
            ti += 1;
        }
        // The owner merges what it received in this step, after its own work of the step.
        for (owner, arrival, rows) in merges {
            let deps: Vec<usize> = last_compute[owner]
                .into_iter()
                .chain(std::iter::once(arrival))
                .collect();
            out.push(Task {
                kind: Kind::Compute {
                    dev: owner,
                    us: model.merge_us(shape, rows),
                    activity: Activity::Merge,
                },
                step: s,
                deps,
            });
            last_compute[owner] = Some(out.len() - 1);
        }
    }
    // Each device converts its accumulator once everything is merged.
    let rows = plan.chunk * plan.schedule.partition().chunks_of(0, n).len();
    for (dev, last) in last_compute.iter().enumerate() {
        out.push(Task {
            kind: Kind::Compute {
                dev,
                us: model.finalize_us(shape, rows),
                activity: Activity::Finalize,
            },
            step: plan.steps - 1,
            deps: last.iter().copied().collect(),
        });
    }
    out
}

#[derive(PartialEq)]
struct Event(f64, usize);
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    fn cmp(&self, o: &Self) -> Ordering {
        // Min-heap on time, then task id.
        o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
    }
}

struct Flow {
    task: usize,
    remaining: f64,
    rate: f64,
}

/// Max-min fair rates (progressive filling) of `flows` over links of capacity `cap`: the link
/// with the smallest fair share fixes the rate of its unfixed flows, which leave every link
/// they cross; repeated until every flow has a rate. All links tied at the lowest share are
/// settled in one round, so symmetric networks need few rounds.
fn fair_rates(flows: &mut [Flow], routes: &[&[usize]], cap: &[f64], sc: &mut Scratch) {
    sc.used.clear();
    for (i, r) in routes.iter().enumerate() {
        for &l in *r {
            if sc.count[l] == 0 {
                sc.used.push(l);
                sc.left[l] = cap[l];
                sc.on[l].clear();
            }
            sc.count[l] += 1;
            sc.on[l].push(i);
        }
    }
    sc.fixed.clear();
    sc.fixed.resize(flows.len(), false);
    loop {
        let share = sc
            .used
            .iter()
            .filter(|&&l| sc.count[l] > 0)
            .map(|&l| sc.left[l] / sc.count[l] as f64)
            .fold(f64::INFINITY, f64::min);
        if !share.is_finite() {
            break;
        }
        // Every link at the lowest share saturates at once (symmetric networks have many).
        let level = share * (1.0 + 1e-12);
        for u in 0..sc.used.len() {
            let l = sc.used[u];
            if sc.count[l] == 0 || sc.left[l] / sc.count[l] as f64 > level {
                continue;
            }
            for k in 0..sc.on[l].len() {
                let i = sc.on[l][k];
                if sc.fixed[i] {
                    continue;
                }
                sc.fixed[i] = true;
                flows[i].rate = share;
                for &m in routes[i] {
                    sc.left[m] -= share;
                    sc.count[m] -= 1;
                }
            }
        }
    }
    for &l in &sc.used {
        sc.count[l] = 0;
    }
}

struct Scratch {
    left: Vec<f64>,
    count: Vec<usize>,
    used: Vec<usize>,
    on: Vec<Vec<usize>>,
    fixed: Vec<bool>,
}

/// Marks the links of every flow that starts or ends at `dev` (its rate depends on whether
/// `dev` computes).
fn touch_device<'a>(
    dev: usize,
    flows: &[Flow],
    tasks: &[Task],
    route_of: &impl Fn(usize) -> &'a [usize],
    touched: &mut Vec<usize>,
) {
    for f in flows {
        if let Kind::Transfer { src, dst, .. } = tasks[f.task].kind {
            if src == dev || dst == dev {
                touched.extend_from_slice(route_of(f.task));
            }
        }
    }
}

/// Simulates `plan` on `cluster` with compute times from `model`.
pub fn simulate(
    plan: &Plan,
    cluster: &Cluster,
    model: &dyn ComputeModel,
) -> Result<Timeline, RingError> {
    let net = Network::new(
        cluster.topology,
        plan.devices,
        cluster.link_gbs,
        cluster.hop_latency_us,
    )?;
    if !(0.0..=1.0).contains(&cluster.overlap) {
        return Err(RingError::Config {
            field: "overlap".into(),
            why: format!("{} must lie in [0, 1]", cluster.overlap),
        });
    }
    if !(cluster.msg_overhead_us.is_finite() && cluster.msg_overhead_us >= 0.0) {
        return Err(RingError::Config {
            field: "msg_overhead_us".into(),
            why: format!("{} must be >= 0", cluster.msg_overhead_us),
        });
    }
    simulate_on(plan, &net, cluster.msg_overhead_us, cluster.overlap, model)
}

/// Simulates `plan` on an instantiated network.
pub fn simulate_on(
    plan: &Plan,
    net: &Network,
    msg_overhead_us: f64,
    overlap: f64,
    model: &dyn ComputeModel,
) -> Result<Timeline, RingError> {
    let tasks = tasks(plan, model);
    let nt = tasks.len();
    let mut waiting: Vec<usize> = tasks.iter().map(|t| t.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nt];
    for (i, t) in tasks.iter().enumerate() {
        for &d in &t.deps {
            dependents[d].push(i);
        }
    }
    let cap: Vec<f64> = net.links.iter().map(|l| l.bytes_per_us).collect();
    let mut link_bytes = vec![0u64; net.links.len()];
    let mut start = vec![f64::NAN; nt];
    let mut end = vec![f64::NAN; nt];
    let mut heap = BinaryHeap::new();
    let mut flows: Vec<Flow> = Vec::new();
    let mut scratch = Scratch {
        left: vec![0.0; cap.len()],
        count: vec![0; cap.len()],
        used: Vec::new(),
        on: vec![Vec::new(); cap.len()],
        fixed: Vec::new(),
    };
    let mut t = 0.0f64;
    let mut done = 0;
    let mut ready: Vec<usize> = (0..nt).filter(|&i| waiting[i] == 0).collect();
    let mut rates_stale = true;
    let mut computing = vec![false; plan.devices];
    // Max-min fairness decomposes over groups of flows that share links (transitively), so
    // after a change only the group around the touched links is recomputed.
    let route_of = |task: usize| match tasks[task].kind {
        Kind::Transfer { src, dst, .. } => net.route(src, dst),
        Kind::Compute { .. } => &[],
    };
    let mut link_flows: Vec<Vec<usize>> = vec![Vec::new(); cap.len()];
    let mut flow_at = vec![usize::MAX; nt];
    let mut touched: Vec<usize> = Vec::new();
    let mut link_seen = vec![0u32; cap.len()];
    let mut task_seen = vec![0u32; nt];
    let mut epoch = 0u32;
    let (mut big_groups, mut recomputes) = (false, 0u64);
    let (mut group, mut sub, mut routes, mut stack) = (
        Vec::<usize>::new(),
        Vec::<Flow>::new(),
        Vec::<&[usize]>::new(),
        Vec::<usize>::new(),
    );
    while done < nt {
        for i in ready.drain(..) {
            start[i] = t;
            match tasks[i].kind {
                Kind::Compute { dev, us, .. } => {
                    heap.push(Event(t + us.max(0.0), i));
                    computing[dev] = true;
                    if overlap < 1.0 {
                        touch_device(dev, &flows, &tasks, &route_of, &mut touched);
                        rates_stale = true;
                    }
                }
                Kind::Transfer { src, dst, bytes } => {
                    let route = net.route(src, dst);
                    for &l in route {
                        link_bytes[l] += bytes;
                    }
                    if route.is_empty() || bytes == 0 {
                        heap.push(Event(t + msg_overhead_us, i));
                    } else {
                        for &l in route {
                            link_flows[l].push(i);
                        }
                        touched.extend_from_slice(route);
                        flow_at[i] = flows.len();
                        flows.push(Flow {
                            task: i,
                            remaining: bytes as f64,
                            rate: 0.0,
                        });
                        rates_stale = true;
                    }
                }
            }
        }
        if rates_stale && !flows.is_empty() {
            recomputes += 1;
            if big_groups && recomputes % 16 != 0 {
                // Groups have spanned (nearly) every flow lately: recompute all, skip the search.
                touched.clear();
                routes.clear();
                routes.extend(flows.iter().map(|f| route_of(f.task)));
                fair_rates(&mut flows, &routes, &cap, &mut scratch);
                group.clear();
                group.extend(0..flows.len());
            } else {
                // The group: every flow reachable from the touched links through shared links.
                epoch += 1;
                group.clear(); // indices into `flows`
                stack.clear();
                stack.append(&mut touched);
                while let Some(l) = stack.pop() {
                    if group.len() == flows.len() {
                        break; // everything already in: the whole network is one group
                    }
                    if link_seen[l] == epoch {
                        continue;
                    }
                    link_seen[l] = epoch;
                    for &task in &link_flows[l] {
                        if task_seen[task] != epoch {
                            task_seen[task] = epoch;
                            group.push(flow_at[task]);
                            stack.extend_from_slice(route_of(task));
                        }
                    }
                }
                big_groups = group.len() * 5 >= flows.len() * 4;
                sub.clear();
                sub.extend(group.iter().map(|&k| Flow {
                    task: flows[k].task,
                    remaining: flows[k].remaining,
                    rate: 0.0,
                }));
                routes.clear();
                routes.extend(sub.iter().map(|f| route_of(f.task)));
                fair_rates(&mut sub, &routes, &cap, &mut scratch);
                for (f, &k) in sub.iter().zip(&group) {
                    flows[k].rate = f.rate;
                }
            }
            if overlap < 1.0 {
                for &k in &group {
                    if let Kind::Transfer { src, dst, .. } = tasks[flows[k].task].kind {
                        if computing[src] || computing[dst] {
                            flows[k].rate *= overlap;
                        }
                    }
                }
            }
            rates_stale = false;
        }
        let drain = flows
            .iter()
            .map(|f| f.remaining / f.rate)
            .fold(f64::INFINITY, f64::min);
        let next_event = heap.peek().map_or(f64::INFINITY, |e| e.0);
        if !drain.is_finite() && !next_event.is_finite() {
            return Err(RingError::Deadlock(format!(
                "{} of {nt} tasks never became ready",
                nt - done
            )));
        }
        let dt = if t + drain <= next_event {
            drain
        } else {
            next_event - t
        };
        t += dt;
        // Advance the flows; those drained finish after their latency.
        let mut i = 0;
        while i < flows.len() {
            let f = &mut flows[i];
            f.remaining -= f.rate * dt;
            if f.remaining <= 1e-9 * (1.0 + f.rate) {
                let task = f.task;
                let hops = match tasks[task].kind {
                    Kind::Transfer { src, dst, .. } => net.route(src, dst).len(),
                    Kind::Compute { .. } => 0,
                };
                heap.push(Event(
                    t + msg_overhead_us + hops as f64 * net.hop_latency_us,
                    task,
                ));
                for &l in route_of(task) {
                    let v = &mut link_flows[l];
                    if let Some(p) = v.iter().position(|&x| x == task) {
                        v.swap_remove(p);
                    }
                }
                touched.extend_from_slice(route_of(task));
                flows.swap_remove(i);
                if i < flows.len() {
                    flow_at[flows[i].task] = i;
                }
                rates_stale = true;
            } else {
                i += 1;
            }
        }
        while heap.peek().is_some_and(|e| e.0 <= t) {
            let Event(at, i) = heap.pop().expect("peeked");
            t = t.max(at);
            end[i] = at;
            if let Kind::Compute { dev, .. } = tasks[i].kind {
                computing[dev] = false;
                if overlap < 1.0 {
                    touch_device(dev, &flows, &tasks, &route_of, &mut touched);
                    rates_stale = true;
                }
            }
            done += 1;
            for &d in &dependents[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(d);
                }
            }
        }
    }
    let mut intervals = Vec::with_capacity(nt);
    let mut busy = vec![0.0; plan.devices];
    let last_step = tasks.iter().map(|t| t.step).max().unwrap_or(0);
    let mut step_end = vec![0.0f64; last_step + 1];
    for (i, task) in tasks.iter().enumerate() {
        step_end[task.step] = step_end[task.step].max(end[i]);
        let (dev, activity, peer, bytes) = match task.kind {
            Kind::Compute { dev, us, activity } => {
                if activity != Activity::Finalize {
                    busy[dev] += us;
                }
                (dev, activity, None, 0)
            }
            Kind::Transfer { src, dst, bytes } => (src, Activity::Send, Some(dst), bytes),
        };
        intervals.push(Interval {
            dev,
            activity,
            step: task.step,
            start_us: start[i],
            end_us: end[i],
            peer,
            bytes,
        });
    }
    // A step cannot end before the previous one.
    for s in 1..step_end.len() {
        step_end[s] = step_end[s].max(step_end[s - 1]);
    }
    Ok(Timeline {
        total_us: end.iter().copied().fold(0.0, f64::max),
        intervals,
        step_end_us: step_end,
        compute_busy_us: busy,
        link_bytes: net
            .links
            .iter()
            .zip(&link_bytes)
            .filter(|(_, &b)| b > 0)
            .map(|(l, &b)| (l.name.clone(), b))
            .collect(),
        bytes_moved: plan.transfers.iter().map(|t| t.bytes).sum(),
    })
}
