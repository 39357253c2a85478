//! Preparing the next items while the caller works on the current ones: `prepare` runs on
//! worker threads ahead of the caller, which receives the results in the items' order. At most
//! `ahead` results exist that the caller has not taken yet (the memory bound), however slow one
//! item is. `classify` decodes and preprocesses the next images this way while the image model
//! runs, batch by batch ([`in_batches`]).

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Mutex};
use std::thread;

/// Calls `consume(i, prepare(&items[i]))` for every item in order, `prepare` running on
/// `workers` threads at most `ahead` items ahead of `consume`, which runs on the calling thread.
/// Stops at the first error of `consume` (the workers finish the item they hold and stop) and
/// returns it. A panic in `prepare` is resumed on the calling thread once the workers stopped.
pub fn in_order<I, T, E>(
    items: &[I],
    workers: NonZeroUsize,
    ahead: NonZeroUsize,
    prepare: impl Fn(&I) -> T + Sync,
    mut consume: impl FnMut(usize, T) -> Result<(), E>,
) -> Result<(), E>
where
    I: Sync,
    T: Send,
{
    let (ticket_tx, ticket_rx) = mpsc::channel::<usize>();
    let ticket_rx = Mutex::new(ticket_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, thread::Result<T>)>();
    thread::scope(|scope| {
        // Owned by this closure: dropped when it returns or unwinds, before the scope joins the
        // workers, so that a worker waiting for a ticket then stops.
        let ticket_tx = ticket_tx;
        for _ in 0..workers.get().min(items.len()) {
            let done_tx = done_tx.clone();
            let (ticket_rx, prepare) = (&ticket_rx, &prepare);
            scope.spawn(move || {
                while let Ok(i) = next_ticket(ticket_rx) {
                    let prepared = panic::catch_unwind(AssertUnwindSafe(|| prepare(&items[i])));
                    if done_tx.send((i, prepared)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        for i in 0..ahead.get().min(items.len()) {
            // The receiver outlives the scope: sending cannot fail.
            let _ = ticket_tx.send(i);
        }
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        while next < items.len() {
            let (i, prepared) = done_rx
                .recv()
                .expect("a worker holds every ticket not yet answered");
            waiting.insert(i, prepared.unwrap_or_else(|p| panic::resume_unwind(p)));
            while let Some(prepared) = waiting.remove(&next) {
                consume(next, prepared)?;
                if next + ahead.get() < items.len() {
                    let _ = ticket_tx.send(next + ahead.get());
                }
                next += 1;
            }
        }
        Ok(())
    })
}

/// [`in_order`], the results handed to `consume` `batch` at a time with the range of their
/// items (the last batch may be shorter), at most two batches and one item per worker
/// prepared ahead of the caller.
pub fn in_batches<I, T, E>(
    items: &[I],
    workers: NonZeroUsize,
    batch: NonZeroUsize,
    prepare: impl Fn(&I) -> T + Sync,
    mut consume: impl FnMut(Range<usize>, Vec<T>) -> Result<(), E>,
) -> Result<(), E>
where
    I: Sync,
    T: Send,
{
    let batch = batch.get();
    let ahead = NonZeroUsize::new(2 * batch + workers.get()).expect("a batch is at least one");
    let mut pending = Vec::with_capacity(batch);
    in_order(items, workers, ahead, prepare, |i, prepared| {
        pending.push(prepared);
        if pending.len() < batch && i + 1 < items.len() {
            return Ok(());
        }
        let done = std::mem::replace(&mut pending, Vec::with_capacity(batch));
        consume(i + 1 - done.len()..i + 1, done)
    })
}

/// The next item a worker may prepare; an error when there are no more. The lock is held only
/// while waiting for a ticket, never while preparing.
fn next_ticket(tickets: &Mutex<mpsc::Receiver<usize>>) -> Result<usize, mpsc::RecvError> {
    // Nothing panics while holding the lock, but a poisoned receiver would still be whole.
    tickets.lock().unwrap_or_else(|e| e.into_inner()).recv()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn n(x: usize) -> NonZeroUsize {
        NonZeroUsize::new(x).unwrap()
    }

    #[test]
    fn results_come_in_order_whatever_order_the_workers_finish_in() {
        let items: Vec<u64> = (0..40).collect();
        let mut seen = Vec::new();
        in_order(
            &items,
            n(4),
            n(6),
            |&x| {
                // Early items take longest, so later ones finish first.
                std::thread::sleep(Duration::from_millis((40 - x) % 7));
                x * 10
            },
            |i, y| {
                seen.push((i, y));
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        let expected: Vec<(usize, u64)> = (0..40).map(|i| (i as usize, i * 10)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn no_more_than_ahead_results_wait_for_the_caller() {
        let items: Vec<usize> = (0..30).collect();
        let prepared = AtomicUsize::new(0);
        let mut most_waiting = 0;
        in_order(
            &items,
            n(3),
            n(5),
            |_| prepared.fetch_add(1, Ordering::SeqCst),
            |i, _| {
                // A slow caller: the workers would run far ahead if nothing held them.
                std::thread::sleep(Duration::from_millis(2));
                let waiting = prepared.load(Ordering::SeqCst) - i;
                most_waiting = most_waiting.max(waiting);
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        assert!(
            most_waiting <= 5,
            "{most_waiting} prepared ahead of the caller"
        );
        assert_eq!(prepared.load(Ordering::SeqCst), 30);
    }

    #[test]
    fn an_error_of_the_caller_stops_the_run() {
        let items: Vec<usize> = (0..100).collect();
        let prepared = AtomicUsize::new(0);
        let result = in_order(
            &items,
            n(2),
            n(4),
            |&x| {
                prepared.fetch_add(1, Ordering::SeqCst);
                x
            },
            |i, _| if i == 10 { Err("disk full") } else { Ok(()) },
        );
        assert_eq!(result, Err("disk full"));
        assert!(prepared.load(Ordering::SeqCst) <= 11 + 4);
    }

    #[test]
    fn empty_and_single_item_runs_work() {
        let mut calls = 0;
        in_order(
            &[] as &[u8],
            n(2),
            n(2),
            |&x| x,
            |_, _| {
                calls += 1;
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        in_order(
            &[7u8],
            n(4),
            n(1),
            |&x| x,
            |_, x| {
                assert_eq!(x, 7);
                calls += 1;
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        assert_eq!(calls, 1);
    }

    #[test]
    fn batches_hold_consecutive_items_and_the_last_may_be_short() {
        let items: Vec<usize> = (0..7).collect();
        let mut seen = Vec::new();
        in_batches(
            &items,
            n(3),
            n(3),
            |&x| x * 2,
            |range, ys| {
                seen.push((range, ys));
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        assert_eq!(
            seen,
            [
                (0..3, vec![0, 2, 4]),
                (3..6, vec![6, 8, 10]),
                (6..7, vec![12])
            ]
        );
    }

    #[test]
    #[should_panic(expected = "bad item")]
    fn a_panic_while_preparing_reaches_the_caller() {
        let items: Vec<usize> = (0..10).collect();
        let _ = in_order(
            &items,
            n(2),
            n(3),
            |&x| {
                assert!(x != 5, "bad item");
                x
            },
            |_, _| Ok::<_, ()>(()),
        );
    }
}
