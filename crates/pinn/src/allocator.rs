//! The global allocator of the `pinn` binary: mimalloc, set to keep the memory it frees. (The
//! `pinn-bench` library includes this file as its `allocator` module, so that the benchmark
//! binaries install the same and their timings match real runs.)
//!
//! A training step allocates and frees the same large tensors every iteration. glibc's
//! allocator returned them to the kernel each time (page faults were 20 % of a step). mimalloc
//! by default still returns ("purges") freed memory to the kernel after 10 ms, so each step
//! faulted its pages in again: 85,000 page faults in 900 continuous Burgers steps, against
//! 320 with purging off, and a step 2-6 % faster on the 2-core machine in two of three
//! alternating pairs of runs (docs/status.md). A process keeps its peak memory instead, which
//! for a training run is what it needs anyway.

/// The global allocator the binaries install with `#[global_allocator]`.
pub type Allocator = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (mimalloc 2 and 3), which
/// `libmimalloc-sys` does not name.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns mimalloc's purging of freed memory off (see the module docs). Call it at the start of
/// `main`; it has effect only where the global allocator is [`Allocator`].
pub fn keep_freed_memory() {
    // SAFETY: `mi_option_set` only stores an option value; any value is valid for the purge
    // delay (-1: never purge) and mimalloc reads it on its next purge.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
}
