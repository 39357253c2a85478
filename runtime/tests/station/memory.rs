//! The month's memory measurements: samples taken at health records, and the check that the
//! end of the month holds no more than its start after the warm-up.
//!
//! The resident figure checked is the process's `VmRSS`, except under an emulator
//! (`XRVLM_TEST_RUNNER`, CI's aarch64 leg), where `VmRSS` is the emulator's own: its
//! translation cache (40 MiB) and its heap, which grew 5.7 to 7.6 % over the month (qemu
//! 7.2) while the program's memory did not. There the figure is the program's writable
//! mappings (heap, stacks, data; the emulated `/proc/self/maps`) that `mincore(2)` finds in
//! memory: natively the same as `RssAnon`, and what a leak grows. (Its file pages cannot be
//! told apart from the page cache that way: counted, they moved by 3 % with other processes'
//! builds.) Both figures are reported on both; the writable part, about 5 MiB, moves by a few
//! percent as the allocators reuse memory across the in-process restarts (glibc: by up to 7 %
//! between health records; musl: +1.5 to +2.7 % over the month), with the live heap flat.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::LIVE_BYTES;

/// Resident memory at the end may differ from that after the warm-up by this much, in percent.
const RESIDENT_TOLERANCE_PERCENT: u64 = 5;
/// The live heap may grow by this much over the month after the warm-up: less than 100 bytes
/// a frame.
const LIVE_HEAP_SLACK: i64 = 16 * 1024;

/// Memory at one moment of the month.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Fake time since the month started.
    pub at: Duration,
    /// Bytes allocated and not freed (the binary's counting allocator).
    pub live: i64,
    /// Resident pages of the writable mappings, KiB.
    pub writable: u64,
    /// `VmRSS`, KiB: the emulator's under an emulator.
    pub vm_rss: u64,
}

impl Sample {
    /// Memory now, `at` into the month.
    pub fn take(at: Duration) -> Self {
        // First, before reading the files below allocates.
        let live = LIVE_BYTES.load(Ordering::Relaxed);
        Self {
            at,
            live,
            writable: writable_kib(),
            vm_rss: vm_rss_kib(),
        }
    }

    /// The program's resident memory, KiB: `VmRSS`, or under an emulator its writable mappings.
    pub fn resident(&self) -> u64 {
        if emulated() {
            self.writable
        } else {
            self.vm_rss
        }
    }

    /// Days into the month.
    pub fn day(&self) -> f64 {
        self.at.as_secs_f64() / 86400.0
    }
}

/// Whether the test runs under an emulator, as `tests/common` starts the binary.
pub fn emulated() -> bool {
    std::env::var("XRVLM_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty())
}

/// What [`Sample::resident`] is, for messages.
pub fn resident_name() -> &'static str {
    if emulated() {
        "the program's writable mappings (VmRSS is the emulator's)"
    } else {
        "VmRSS"
    }
}

/// Percent change from `from` to `to`.
pub fn change(from: u64, to: u64) -> f64 {
    (to as f64 / from as f64 - 1.0) * 100.0
}

/// `VmRSS` of this process, in KiB.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line in /proc/self/status")
}

/// Resident pages of the writable mappings of this process, in KiB.
fn writable_kib() -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    // SAFETY: sysconf only reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let pages: usize = maps
        .lines()
        .filter_map(writable_mapping)
        .map(|range| resident_pages(range, page))
        .sum();
    (pages * page / 1024) as u64
}

/// The address range of a `/proc/self/maps` line whose mapping is writable (`rw-p`, `rw-s`).
fn writable_mapping(line: &str) -> Option<Range<usize>> {
    let mut fields = line.split_whitespace();
    let (from, to) = fields.next()?.split_once('-')?;
    if !fields.next()?.starts_with("rw") {
        return None;
    }
    Some(usize::from_str_radix(from, 16).ok()?..usize::from_str_radix(to, 16).ok()?)
}

fn resident_pages(range: Range<usize>, page: usize) -> usize {
    let mut in_core = vec![0u8; range.len().div_ceil(page)];
    // SAFETY: `in_core` has a byte for each page of the range; mincore only writes those
    // bytes, and fails (ENOMEM) without writing if the range was unmapped since it was listed.
    let failed = unsafe {
        libc::mincore(
            range.start as *mut libc::c_void,
            range.len(),
            in_core.as_mut_ptr(),
        )
    } != 0;
    if failed {
        return 0;
    }
    in_core.iter().filter(|&&b| b & 1 == 1).count()
}

/// glibc raises its mmap threshold to the size of each mmapped block freed, so that after the
/// first restart in this process the next model's large buffers come from the heap, which keeps
/// them resident after they are freed: measured, +11.7 % of RSS over the five restarts, with
/// the live heap flat. On a device each restart is a new process, which starts at glibc's
/// default; pinning the threshold at that default (128 KiB) makes the restarts here the same.
#[cfg(target_env = "gnu")]
pub fn pin_mmap_threshold() {
    // SAFETY: mallopt only sets a tuning parameter of the allocator.
    let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    assert_eq!(set, 1, "mallopt(M_MMAP_THRESHOLD)");
}

/// musl has no adaptive threshold (and no mallopt).
#[cfg(not(target_env = "gnu"))]
pub fn pin_mmap_threshold() {}

/// The resident memory at the end is within [`RESIDENT_TOLERANCE_PERCENT`] of that at
/// `start`, and the live heap grew by at most [`LIVE_HEAP_SLACK`].
pub fn check(start: Sample, end: Sample) {
    let (from, to) = (start.resident(), end.resident());
    assert!(
        to.abs_diff(from) * 100 <= from * RESIDENT_TOLERANCE_PERCENT,
        "resident memory ({}) {from} KiB after the warm-up (day {:.1}), {to} KiB at the end \
         ({:+.2} %, more than {RESIDENT_TOLERANCE_PERCENT} %); VmRSS {} → {} KiB, writable \
         mappings {} → {} KiB",
        resident_name(),
        start.day(),
        change(from, to),
        start.vm_rss,
        end.vm_rss,
        start.writable,
        end.writable
    );
    let growth = end.live - start.live;
    assert!(
        growth <= LIVE_HEAP_SLACK,
        "the live heap grew by {growth} bytes from day {:.1} to the end of the month",
        start.day()
    );
}
