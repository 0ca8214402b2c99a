"""The L2 flush of the Python peers, as the Rust harness does it (gpu/src/harness.rs).

A bench file's [timing] flush_l2 = false turns it off; flush_mode picks it: "read" (the default) reads a buffer twice the L2
size, leaving the L2 full of clean lines; "write" overwrites it, leaving dirty lines whose
write-back the next timed kernel pays for.
"""


def flusher(torch, timing):
    """A function that evicts the L2 as the bench file's [timing] table asks."""
    if not timing.get("flush_l2", True):
        return lambda: None
    mode = timing.get("flush_mode", "read")
    if mode not in ("read", "write"):
        raise SystemExit(f"[timing] flush_mode = {mode!r}: choose \"read\" or \"write\"")
    l2 = torch.cuda.get_device_properties(torch.device("cuda")).L2_cache_size
    buf = torch.zeros(2 * l2 // 4, dtype=torch.int32, device="cuda")
    if mode == "write":
        return lambda: buf.fill_(0x5A5A5A5A)
    return lambda: buf.sum()
