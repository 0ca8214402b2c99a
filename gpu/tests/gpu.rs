//! GPU crate integration tests: every kernel variant compiles with NVRTC (where NVRTC is
//! installed; `scripts/test.sh` installs it), and — on a machine with a CUDA device — every
//! kernel matches the fp64 reference on fresh random inputs with poisoned outputs. Without a
//! device the GPU tests print "skipped: no CUDA device" and pass; the CPU references, masks and
//! quantizers are tested in the unit tests everywhere.

use gpu::attention::{self, AttnProblem, AttnVariant, DeviceAttn, DeviceMask, HostAttn};
use gpu::decode::{DecodeProblem, Fp16Decode, HostDecode, PqCache, PqDecode, PqKernel};
use gpu::device::{nvrtc_present, Gpu};
use gpu::harness::Harness;
use gpu::kernels::{KernelKey, Source};
use gpu::lowbit::{self, Format, Tiling};
use gpu::mask::MaskSpec;
use gpu::ring::{SpCluster, SpRun};
use gpu::Dtype;
use sim::ring::{AttnShape, Plan, Schedule};

fn all_variant_defines() -> Vec<KernelKey> {
    let mut keys = vec![KernelKey::new(Source::Copy, &[])];
    for d in [64i64, 128] {
        for bf in [0i64, 1] {
            for v in AttnVariant::block_candidates(d as usize)
                .into_iter()
                .chain(AttnVariant::wgmma_candidates())
                .chain([AttnVariant::Rows])
            {
                let p = AttnProblem {
                    batch: 1,
                    heads: 1,
                    kv_heads: 1,
                    n_q: 1,
                    n_kv: 1,
                    head_dim: d as usize,
                    dtype: if bf == 1 { Dtype::Bf16 } else { Dtype::F16 },
                };
                keys.push(KernelKey::new(
                    attention::kernel_of(v).0,
                    &attention::defines(&p, v),
                ));
            }
            keys.push(KernelKey::new(
                Source::Decode,
                &[("HEAD_DIM", d), ("IS_BF16", bf)],
            ));
            keys.push(KernelKey::new(
                Source::Ring,
                &[("HEAD_DIM", d), ("IS_BF16", bf)],
            ));
            for m in [16, 32, 64] {
                keys.push(KernelKey::new(
                    Source::Decode,
                    &[("HEAD_DIM", d), ("IS_BF16", bf), ("PQ_M", m)],
                ));
            }
        }
    }
    for f in Format::ALL {
        for batch in [1i64, 32] {
            for rows in [1i64, 2, 4, 8]
                .into_iter()
                .filter(|r| r * batch <= 32 || *r < 8)
            {
                // Blocks of 4 warps, and at batch 1 of 16 (the largest CUDA-core block).
                for warps in [4i64, 16].into_iter().filter(|w| *w == 4 || batch == 1) {
                    keys.push(KernelKey::new(
                        Source::Lowbit,
                        &[
                            ("FMT", f.code()),
                            ("BATCH", batch),
                            ("ROWS", rows),
                            ("IS_BF16", 0),
                            ("WARPS", warps),
                        ],
                    ));
                }
            }
        }
    }
    keys
}

#[test]
fn every_kernel_variant_compiles_with_nvrtc() {
    if !nvrtc_present() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("NVRTC (libnvrtc.so.13) is required under CI=true: scripts/test.sh installs it");
        }
        println!("skipped: NVRTC not installed (scripts/test.sh installs it)");
        return;
    }
    for key in all_variant_defines() {
        let ptx = key.compile("sm_90a").unwrap_or_else(|e| panic!("{e}"));
        let text = ptx.to_src();
        // The matrix kernels must use the tensor cores.
        if key.source == Source::Attention {
            assert!(
                text.contains("mma.sync.aligned.m16n8k16") || !text.contains("attn_block"),
                "{}: no mma.sync",
                key.label()
            );
        }
        if key.source == Source::Lowbit {
            let tc = key.label().contains("BATCH=32");
            assert_eq!(
                text.contains("lowbit_mma") && text.contains("mma.sync.aligned.m16n8k16"),
                tc,
                "{}: the tensor-core kernel exists exactly for batches of 8 or more",
                key.label()
            );
        }
        if key.source == Source::AttentionSm90 {
            assert!(
                text.contains("wgmma.mma_async"),
                "{}: no wgmma",
                key.label()
            );
        }
    }
}

fn gpu_or_skip() -> Option<Gpu> {
    match Gpu::open(0) {
        Ok(g) => Some(g),
        Err(e) => {
            println!("skipped: {e}");
            None
        }
    }
}

#[test]
fn masked_attention_matches_fp64_for_every_mask_variant_and_dtype() {
    let Some(gpu) = gpu_or_skip() else { return };
    let h = Harness::new(&gpu).unwrap();
    let masks = [
        MaskSpec::Full,
        MaskSpec::Causal,
        MaskSpec::SlidingWindow {
            window: 100,
            causal: true,
        },
        MaskSpec::BlockSparse {
            block: 128,
            keep: 0.4,
            seed: 5,
            causal: false,
        },
        MaskSpec::BlockSparse {
            block: 128,
            keep: 0.5,
            seed: 6,
            causal: true,
        },
        MaskSpec::VarLen {
            lens: vec![300, 77],
        },
        MaskSpec::Document {
            docs: vec![100, 200, 50],
            causal: true,
        },
    ];
    let mut seed = 100;
    for d in [64, 128] {
        for dtype in [Dtype::F16, Dtype::Bf16] {
            // Sequence not a multiple of any tile: exercises the edges.
            let p = AttnProblem {
                batch: 2,
                heads: 4,
                kv_heads: 2,
                n_q: 333,
                n_kv: 333,
                head_dim: d,
                dtype,
            };
            seed += 1;
            let host = HostAttn::random(&p, seed);
            let mut dev = DeviceAttn::new(&gpu, &p, &host).unwrap();
            for mask in &masks {
                let hopper = if gpu.arch() == "sm_90a" {
                    AttnVariant::wgmma_candidates()
                } else {
                    vec![]
                };
                for v in AttnVariant::block_candidates(d)
                    .into_iter()
                    .chain(hopper)
                    .chain([AttnVariant::Rows])
                {
                    let Ok(dm) = DeviceMask::new(&gpu, mask, &p, v) else {
                        continue;
                    };
                    h.poison(&mut dev.o, 0xffff_ffff).unwrap();
                    h.poison(&mut dev.lse, 0xffff_ffff).unwrap();
                    attention::launch(&gpu, &p, v, &mut dev, &dm).unwrap();
                    gpu.sync().unwrap();
                    let out = attention::download(&gpu, &dev.o, "O").unwrap();
                    let lse = attention::download(&gpu, &dev.lse, "LSE").unwrap();
                    let c = attention::check(&p, mask, &host, &out, &lse, usize::MAX, 0);
                    let tol = 4.0 * dtype.unit_roundoff();
                    assert_eq!(c.unwritten, 0, "{} {} {:?}", mask.label(), v.label(), dtype);
                    assert!(
                        c.out.relative() < tol,
                        "{} {} {:?} d{d}: {:.3e}",
                        mask.label(),
                        v.label(),
                        dtype,
                        c.out.relative()
                    );
                    assert!(
                        c.lse_max_abs < 1e-2,
                        "{} {}: lse {:.3e}",
                        mask.label(),
                        v.label(),
                        c.lse_max_abs
                    );
                }
            }
        }
    }
}

#[test]
fn decode_fp16_and_pq_match_fp64() {
    let Some(gpu) = gpu_or_skip() else { return };
    let h = Harness::new(&gpu).unwrap();
    for d in [64, 128] {
        let p = DecodeProblem {
            batch: 3,
            heads: 8,
            kv_heads: 4,
            len: 5000,
            head_dim: d,
            dtype: Dtype::F16,
        };
        let host = HostDecode::random(&p, 7 + d as u64);
        let want = host.reference(&p);
        for splits in [1, 7, 64] {
            let mut dec = Fp16Decode::new(&gpu, &p, &host, splits).unwrap();
            h.poison(&mut dec.o, 0xffff_ffff).unwrap();
            dec.launch(&gpu, &p).unwrap();
            gpu.sync().unwrap();
            let e = dec.check(&gpu, &p, &want).unwrap();
            assert!(
                e.relative() < 2e-3,
                "fp16 decode d{d} splits {splits}: {:.3e}",
                e.relative()
            );
        }
        for m in [16, 32, 64] {
            for window in [0, 128] {
                let cache = PqCache::random(&p, m, window, 3).unwrap();
                let want = cache.reference(&p, &host.q);
                let configs = [
                    (PqKernel::Smem, 1, 256),
                    (PqKernel::Smem, 5, 512),
                    (PqKernel::Smem, 3, 1024),
                    (PqKernel::Lanes, 1, 256),
                    (PqKernel::Lanes, 5, 512),
                    (PqKernel::Lanes, 3, 256),
                    (PqKernel::Lanes, 64, 512),
                ];
                for (kernel, splits, threads) in configs {
                    let made = PqDecode::new(&gpu, &p, &host.q, &cache, kernel, splits, threads);
                    if !kernel.supports(m, d) {
                        assert!(made.is_err(), "{kernel:?} m{m} d{d} must be refused");
                        continue;
                    }
                    let mut dec = made.unwrap();
                    h.poison(&mut dec.o, 0xffff_ffff).unwrap();
                    dec.launch(&gpu, &p).unwrap();
                    gpu.sync().unwrap();
                    let e = dec.check(&gpu, &p, &want).unwrap();
                    assert!(
                        e.relative() < 2e-3,
                        "pq {kernel:?} d{d} m{m} w{window} s{splits} t{threads}: {:.3e}",
                        e.relative()
                    );
                }
            }
        }
    }
}

/// Real activations: Q/K/V of all-MiniLM-L6-v2 on real sentences (models/data, written by
/// scripts/minilm_activations.py), head dim 32 zero-padded to 64 (padding changes no score and
/// only adds zero output columns), through the block and row-wise kernels and fp16 decode.
#[test]
fn kernels_match_fp64_on_real_minilm_activations() {
    let Some(gpu) = gpu_or_skip() else { return };
    let h = Harness::new(&gpu).unwrap();
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/data/minilm_qkv.safetensors"
    ))
    .unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let load = |n: &str| -> (Vec<f32>, Vec<usize>) {
        let t = st.tensor(n).unwrap();
        let v = t
            .data()
            .chunks_exact(2)
            .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect();
        (v, t.shape().to_vec())
    };
    let (q, s) = load("q");
    let (k, _) = load("k");
    let (v, _) = load("v");
    // [passages, layers, heads, tokens, 32] -> batch = passages * layers, heads, tokens, 64.
    let (batch, heads, tokens, d0) = (s[0] * s[1], s[2], s[3], s[4]);
    let d = 64;
    for dtype in [Dtype::F16, Dtype::Bf16] {
        let pad = |x: &[f32]| -> Vec<u16> {
            x.chunks(d0)
                .flat_map(|r| {
                    r.iter()
                        .map(|&e| dtype.encode(e))
                        .chain(std::iter::repeat_n(dtype.encode(0.0), d - d0))
                })
                .collect()
        };
        let host = HostAttn {
            q: pad(&q),
            k: pad(&k),
            v: pad(&v),
        };
        let p = AttnProblem {
            batch,
            heads,
            kv_heads: heads,
            n_q: tokens,
            n_kv: tokens,
            head_dim: d,
            dtype,
        };
        let mut dev = DeviceAttn::new(&gpu, &p, &host).unwrap();
        let mut variants = vec![
            AttnVariant::Block {
                warps: 4,
                block_n: 64,
            },
            AttnVariant::Block {
                warps: 8,
                block_n: 32,
            },
            AttnVariant::Rows,
        ];
        // On Hopper, the wgmma kernels too: the selected two-warpgroup pipelined one (TMA
        // loads), one warpgroup without pipelining, and 64-key tiles.
        if gpu.arch() == "sm_90a" {
            for (warpgroups, block_n, pipe) in [(2, 128, true), (1, 128, false), (2, 64, true)] {
                variants.push(AttnVariant::Wgmma {
                    warpgroups,
                    block_n,
                    pipe,
                });
            }
        }
        for mask in [MaskSpec::Full, MaskSpec::Causal] {
            for &var in &variants {
                let dm = DeviceMask::new(&gpu, &mask, &p, var).unwrap();
                h.poison(&mut dev.o, 0xffff_ffff).unwrap();
                attention::launch(&gpu, &p, var, &mut dev, &dm).unwrap();
                gpu.sync().unwrap();
                let out = attention::download(&gpu, &dev.o, "O").unwrap();
                let lse = attention::download(&gpu, &dev.lse, "LSE").unwrap();
                let c = attention::check(&p, &mask, &host, &out, &lse, usize::MAX, 0);
                println!(
                    "real MiniLM activations {:?} {} {}: relative error {:.2e}",
                    dtype,
                    mask.label(),
                    var.label(),
                    c.out.relative()
                );
                assert_eq!(c.unwritten, 0);
                assert!(
                    c.out.relative() < 4.0 * dtype.unit_roundoff(),
                    "{:?} {} {}: {:.3e}",
                    dtype,
                    mask.label(),
                    var.label(),
                    c.out.relative()
                );
            }
        }
        // Decode: the last token's query over the passage's cache.
        let dp = DecodeProblem {
            batch,
            heads,
            kv_heads: heads,
            len: tokens,
            head_dim: d,
            dtype,
        };
        let last: Vec<u16> = host
            .q
            .chunks(tokens * d)
            .flat_map(|c| c[(tokens - 1) * d..].to_vec())
            .collect();
        let hd = HostDecode {
            q: last,
            k: host.k.clone(),
            v: host.v.clone(),
        };
        let want = hd.reference(&dp);
        let mut dec = Fp16Decode::new(&gpu, &dp, &hd, 4).unwrap();
        h.poison(&mut dec.o, 0xffff_ffff).unwrap();
        dec.launch(&gpu, &dp).unwrap();
        gpu.sync().unwrap();
        let e = dec.check(&gpu, &dp, &want).unwrap();
        println!(
            "real MiniLM activations {:?} decode: relative error {:.2e}",
            dtype,
            e.relative()
        );
        assert!(e.relative() < 4.0 * dtype.unit_roundoff());
    }
}

/// The variant sequence-parallel runs use: the fastest measured on Hopper, else the portable
/// block kernel.
fn sp_variant(gpu: &Gpu) -> AttnVariant {
    AttnVariant::parse(if gpu.arch() == "sm_90a" {
        "wgmma-m128-n128-pipe"
    } else {
        "block-m64-n64"
    })
    .unwrap()
}

#[test]
fn sequence_parallel_schedules_over_nccl_match_fp64_in_degenerate_mode() {
    // One GPU, several logical ranks: every shard, query block and partial result travels
    // through NCCL (world-size-1 communicators, send/receive to self).
    let cluster = match SpCluster::open(1, true) {
        Ok(c) => c,
        Err(e) => {
            println!("skipped: {e}");
            return;
        }
    };
    let variant = sp_variant(&cluster.gpus[0]);
    let mut seed = 500;
    for schedule in Schedule::ALL {
        for causal in [false, true] {
            for (heads, kv_heads) in [(4, 4), (8, 2)] {
                for ranks in [1, 2, 3, 4] {
                    seed += 1;
                    let d = if seed % 2 == 0 { 64 } else { 128 };
                    let dtype = if seed % 3 == 0 {
                        Dtype::Bf16
                    } else {
                        Dtype::F16
                    };
                    // Chunks of 80 tokens: not a multiple of any tile.
                    let shape = AttnShape {
                        tokens: 2 * ranks * 80,
                        heads,
                        kv_heads,
                        head_dim: d,
                        causal,
                        elem_bytes: 2,
                    };
                    let p = AttnProblem {
                        batch: 1,
                        heads,
                        kv_heads,
                        n_q: shape.tokens,
                        n_kv: shape.tokens,
                        head_dim: d,
                        dtype,
                    };
                    let host = HostAttn::random(&p, seed);
                    let plan = Plan::new(schedule, shape, ranks).unwrap();
                    let mut run =
                        SpRun::new(&cluster, plan, dtype, variant, &host.q, &host.k, &host.v)
                            .unwrap();
                    let t = run.run().unwrap();
                    let (o, lse) = run.output().unwrap();
                    let mask = if causal {
                        MaskSpec::Causal
                    } else {
                        MaskSpec::Full
                    };
                    let c = attention::check(&p, &mask, &host, &o, &lse, usize::MAX, 0);
                    let what = format!("{schedule:?} ranks={ranks} causal={causal} H={heads}/{kv_heads} d={d} {dtype:?}");
                    assert_eq!(c.unwritten, 0, "{what}");
                    // Partials are rounded to the element type before each merge.
                    let tol = 8.0 * dtype.unit_roundoff();
                    assert!(c.out.relative() < tol, "{what}: {:.3e}", c.out.relative());
                    assert!(c.lse_max_abs < 1e-2, "{what}: lse {:.3e}", c.lse_max_abs);
                    assert!(t.total_us > 0.0 && t.compute_us.len() >= ranks, "{what}");
                }
            }
        }
    }
}

#[test]
fn lowbit_gemv_matches_fp64_for_every_format_batch_and_tiling() {
    let Some(gpu) = gpu_or_skip() else { return };
    // k = 1216 = 19 * 64: uneven splits.
    let k = 1216;
    let mut seed = 40;
    let mut check = |f: Format, n: usize, batch: usize, t: Tiling| {
        seed += 1;
        let (rel, max) = lowbit::check(&gpu, f, n, k, batch, t, seed).unwrap();
        let case = format!("{} n{n} b{batch} {}", f.name(), t.label());
        println!("lowbit {case}: rel {rel:.2e}, max {max:.2e}");
        assert!(rel < 4e-3, "{case}: {rel}");
    };
    // 300 rows: not a multiple of any block's rows.
    for f in Format::ALL {
        for batch in [1, 4, 8, 16, 32] {
            for t in Tiling::candidates(k, batch) {
                check(f, 300, batch, t);
            }
        }
    }
    // 5000 rows on one block per SM or one wave: each warp computes several row groups in
    // turn (the next group's codes, INT planes and centroids are fetched during the current
    // one), and the last group is partial.
    for f in Format::ALL {
        for batch in [1, 4] {
            for t in Tiling::candidates(k, batch)
                .into_iter()
                .filter(|t| !t.mma && (t.per_sm == 1 || t.per_sm == 0))
            {
                check(f, 5000, batch, t);
            }
        }
    }
}

#[test]
fn read_floor_grows_with_the_bytes_and_stays_near_the_copy_bandwidth() {
    let Some(gpu) = gpu_or_skip() else { return };
    let mut h = Harness::new(&gpu).unwrap();
    let cfg = gpu::harness::TimingConfig::default();
    let small = h.read_time(1 << 20, &cfg).unwrap();
    let big = h.read_time(256 << 20, &cfg).unwrap();
    let (copy, _) = h.copy_bandwidth(256 << 20, &cfg).unwrap();
    let read = (256u64 << 20) as f64 / (big.median_us * 1e-6);
    println!(
        "read floor: 1 MB {:.2} us, 256 MB {:.2} us ({:.0} GB/s; copy {:.0} GB/s)",
        small.median_us,
        big.median_us,
        read / 1e9,
        copy / 1e9
    );
    assert!(big.median_us > 4.0 * small.median_us);
    assert!(read > 0.5 * copy && read < 1.6 * copy, "{read} {copy}");
}
