//! Prints the PTX NVRTC makes of one kernel source with the given defines, for reading the
//! machine code offline (`ptxas -arch=sm_90a` then `cuobjdump -sass`), e.g.
//!
//! `cargo run -p gpu --example ptx -- lowbit FMT=1 BATCH=1 ROWS=2 IS_BF16=0 > lowbit.ptx`

use gpu::kernels::{KernelKey, Source};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Named by their file, without ".cu".
    let name = |s: &Source| s.file().trim_end_matches(".cu");
    let sources = [
        Source::Copy,
        Source::Attention,
        Source::Decode,
        Source::AttentionSm90,
        Source::Ring,
        Source::Lowbit,
    ];
    let Some(source) = args
        .first()
        .and_then(|a| sources.iter().find(|s| name(s) == a))
    else {
        let names: Vec<&str> = sources.iter().map(name).collect();
        eprintln!(
            "usage: ptx SOURCE [NAME=VALUE...]; sources: {}",
            names.join(", ")
        );
        std::process::exit(2);
    };
    let mut defines = Vec::new();
    for d in &args[1..] {
        let parsed = d
            .split_once('=')
            .and_then(|(k, v)| v.parse::<i64>().ok().map(|v| (k, v)));
        match parsed {
            Some(kv) => defines.push(kv),
            None => {
                eprintln!("'{d}': a define is NAME=INTEGER");
                std::process::exit(2);
            }
        }
    }
    match KernelKey::new(*source, &defines).compile("sm_90a") {
        Ok(ptx) => print!("{}", ptx.to_src()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
