//! The kernels of aarch64 CPUs (the boards): none of our own yet. tract's arm64 kernels run
//! the int8 products (SDOT where the CPU has it) and the float ops, and our passes that need a
//! fast kernel are left out of a board's plans; the quantize pass runs the portable loop,
//! which NEON vectorizes. The next issue adds NEON kernels here.

use super::Kernels;

/// This CPU's kernels over the reference entries of `kernels`: none yet.
pub fn plug(kernels: &mut Kernels) {
    let _ = kernels;
}
