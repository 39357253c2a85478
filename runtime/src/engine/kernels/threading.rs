//! How a kernel splits its work over the threads of the running tract plan: the bound below
//! which threading costs more than it saves, the split into one contiguous part per thread,
//! and the output slice the parts write together, each into its own elements.

use std::marker::PhantomData;
use std::ops::Range;

use tract_linalg::multithread::{current_tract_executor, Executor};

/// Below this many multiply-accumulates a kernel runs on the calling thread only: the dispatch
/// would cost more than it saves (the bound tract uses for its own products, 2²¹).
pub const THREADING_MACS: usize = 1 << 21;

/// Runs `task` over the items `0..items`: as one contiguous range per thread of the running
/// plan's pool where the job is worth it (at least [`THREADING_MACS`] multiply-accumulates and
/// more than one thread), else as one range on this thread. The items must be independent.
pub fn for_each_part(items: usize, macs: usize, task: impl Fn(Range<usize>) + Sync) {
    match current_tract_executor() {
        Executor::MultiThread(pool) if pool.current_num_threads() > 1 && macs >= THREADING_MACS => {
            let parts = pool.current_num_threads().min(items);
            pool.install(|| {
                rayon::scope(|scope| {
                    for part in 0..parts {
                        let range = items * part / parts..items * (part + 1) / parts;
                        let task = &task;
                        scope.spawn(move |_| task(range));
                    }
                })
            });
        }
        _ => task(0..items),
    }
}

/// An output slice that the parts of one kernel call write at the same time, each into
/// elements no other part touches (the kernel's contract says which). It only hands out the
/// raw pointer; writing through it is the kernel's unsafe code.
pub struct SharedOutput<'a, T> {
    ptr: *mut T,
    _slice: PhantomData<&'a mut [T]>,
}

// SAFETY: the type gives shared access to a raw pointer only; every write through it is an
// unsafe operation whose caller keeps the parts' elements disjoint, so no two threads write the
// same element, and the borrow of the slice outlives the parts (`for_each_part` returns only
// when every part is done).
unsafe impl<T: Send> Sync for SharedOutput<'_, T> {}

impl<'a, T> SharedOutput<'a, T> {
    /// Shares `slice` for the duration of its borrow.
    pub fn new(slice: &'a mut [T]) -> Self {
        Self {
            ptr: slice.as_mut_ptr(),
            _slice: PhantomData,
        }
    }

    /// The first element.
    pub fn ptr(&self) -> *mut T {
        self.ptr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn parts_on(threads: usize, items: usize, macs: usize) -> Vec<Range<usize>> {
        let seen = Mutex::new(vec![]);
        let executor = match threads {
            1 => Executor::SingleThread,
            n => Executor::multithread(n),
        };
        tract_linalg::multithread::multithread_tract_scope(executor, || {
            for_each_part(items, macs, |range| seen.lock().unwrap().push(range))
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort_by_key(|r| r.start);
        seen
    }

    #[test]
    fn small_jobs_and_one_thread_run_as_one_part() {
        assert_eq!(parts_on(1, 10, THREADING_MACS), vec![0..10]);
        assert_eq!(parts_on(3, 10, THREADING_MACS - 1), vec![0..10]);
    }

    #[test]
    fn large_jobs_get_one_contiguous_part_per_thread() {
        assert_eq!(parts_on(3, 10, THREADING_MACS), [0..3, 3..6, 6..10]);
        assert_eq!(parts_on(3, 2, THREADING_MACS), [0..1, 1..2]);
    }
}
