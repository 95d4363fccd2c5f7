//! Run one job on many items concurrently, with at most `limit` at once,
//! and collect every result in input order. A slow or failing item never
//! stops the others; deciding what the results mean is the caller's job.

use std::sync::Mutex;
use std::thread;

/// Apply `job` to every item, `limit` items at a time, and return the
/// results in the order of `items`.
pub fn map<I, O, F>(items: &mut [I], limit: usize, job: F) -> Vec<O>
where
    I: Send,
    O: Send,
    F: Fn(&mut I) -> O + Sync,
{
    let total = items.len();
    let workers = limit.clamp(1, total.max(1));
    let queue = Mutex::new(items.iter_mut().enumerate());
    let results: Mutex<Vec<Option<O>>> = Mutex::new((0..total).map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let next = queue.lock().expect("queue lock").next();
                let Some((index, item)) = next else { break };
                let out = job(item);
                results.lock().expect("results lock")[index] = Some(out);
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|o| o.expect("every item was processed"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;

    #[test]
    fn keeps_input_order() {
        let mut items: Vec<u64> = (0..50).collect();
        let out = map(&mut items, 8, |n| *n * 2);
        assert_eq!(out, (0..50).map(|n| n * 2).collect::<Vec<_>>());
    }

    #[test]
    fn never_runs_more_than_limit_at_once() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let mut items = vec![(); 40];
        map(&mut items, 3, |_| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            thread::yield_now();
            running.fetch_sub(1, Ordering::SeqCst);
        });
        assert!(peak.load(Ordering::SeqCst) <= 3);
    }

    #[test]
    fn runs_items_concurrently_up_to_limit() {
        // Four jobs that each wait for all four to start can only finish if
        // they really run at the same time.
        let barrier = Barrier::new(4);
        let mut items = vec![(); 4];
        let out = map(&mut items, 4, |_| {
            barrier.wait();
            1
        });
        assert_eq!(out.iter().sum::<i32>(), 4);
    }

    #[test]
    fn mutates_items_in_place() {
        let mut items = vec![String::from("a"), String::from("b")];
        map(&mut items, 2, |s| s.push('!'));
        assert_eq!(items, ["a!", "b!"]);
    }

    #[test]
    fn empty_input_is_fine() {
        let mut items: Vec<u8> = Vec::new();
        assert!(map(&mut items, 64, |_| 0).is_empty());
    }
}
