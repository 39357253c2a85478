//! Allocator tuning for training on CPU with glibc.
//!
//! candle allocates a fresh buffer for every tensor op. glibc serves buffers of a few hundred KB
//! with `mmap` and returns freed heap tops to the kernel, so each training step pays page faults
//! and zeroing for memory it just gave back: about 20 % of a pre-training run's time on two
//! cores (measured with `perf`: `exc_page_fault`, `clear_page_erms`, `memset`). Raising the mmap
//! threshold to its maximum and the trim threshold to 1 GiB keeps freed buffers in the heap for
//! reuse; the process's peak memory is unchanged. This is what `GLIBC_TUNABLES=
//! glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824` does, applied
//! from inside the process. Elsewhere (other C libraries, other systems) it does nothing.

/// glibc's largest accepted mmap threshold on 64-bit systems (32 MiB).
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free heap kept before glibc trims it (1 GiB).
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
const TRIM_THRESHOLD: i32 = 1 << 30;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::os::raw::c_int;

    /// `mallopt` parameter numbers from glibc's `malloc.h`.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    pub fn keep_freed_memory() -> bool {
        // SAFETY: `mallopt` only changes allocator parameters and may be called at any time;
        // both values are within the ranges glibc documents.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, super::MMAP_THRESHOLD) == 1
                && mallopt(M_TRIM_THRESHOLD, super::TRIM_THRESHOLD) == 1
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn keep_freed_memory() -> bool {
        false
    }
}

/// Makes the allocator keep freed memory for reuse (see the module doc); returns whether it
/// could (false where the C library is not glibc).
pub fn keep_freed_memory() -> bool {
    imp::keep_freed_memory()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tuning_is_accepted_or_a_no_op() {
        let applied = super::keep_freed_memory();
        assert_eq!(applied, cfg!(all(target_os = "linux", target_env = "gnu")));
        // Allocation still works afterwards.
        let v = vec![1u8; 1 << 20];
        assert_eq!(v.len(), 1 << 20);
    }
}
