//! Concurrent CA runs of one session: jobs (a scenario's stages for one ensemble member,
//! a validation member) run on up to `--concurrent-runs` threads at once, each run on
//! its own lane of the session's tiles, and their results are taken in job order, never
//! in completion order, so every output is written as by a sequential run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// Runs `job(i)` for `i` in `0..count` on at most `threads` threads at once (jobs start
/// in index order) and hands the results to `take(i, result)` on the calling thread in
/// index order, each as soon as it and all before it are in. Once a job or a `take`
/// fails no new job starts; the first error in index order is returned when the
/// running jobs have ended.
pub(super) fn in_order<T: Send>(
    count: usize,
    threads: usize,
    job: impl Fn(usize) -> anyhow::Result<T> + Sync,
    mut take: impl FnMut(usize, T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (next, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<(usize, anyhow::Result<T>)>();
    std::thread::scope(|scope| {
        let (job, next, stop) = (&job, &next, &stop);
        for _ in 0..threads.clamp(1, count.max(1)) {
            let tx = tx.clone();
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= count {
                        break;
                    }
                    let r = job(i);
                    if r.is_err() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let (mut held, mut want, mut first_err) = (BTreeMap::new(), 0, None);
        for (i, r) in rx {
            held.insert(i, r);
            while let Some(r) = held.remove(&want) {
                want += 1;
                if first_err.is_some() {
                    continue;
                }
                if let Err(e) = r.and_then(|v| take(want - 1, v)) {
                    stop.store(true, Ordering::SeqCst);
                    first_err = Some(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_index_order_whatever_order_jobs_end_in() {
        // 4 jobs on 4 threads; job i ends only after job i + 1 has: they end in reverse
        // order (job 3 first), and are taken in index order
        let gate = (std::sync::Mutex::new(4usize), std::sync::Condvar::new());
        let mut seen = Vec::new();
        in_order(
            4,
            4,
            |i| {
                let (m, cv) = &gate;
                let mut g = cv.wait_while(m.lock().unwrap(), |g| *g != i + 1).unwrap();
                *g = i;
                cv.notify_all();
                Ok(i * 10)
            },
            |i, v| {
                seen.push((i, v));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, vec![(0, 0), (1, 10), (2, 20), (3, 30)]);
    }

    #[test]
    fn a_failed_job_stops_new_ones_and_its_error_is_returned() {
        let mut seen = Vec::new();
        let err = in_order(
            10,
            1,
            |i| {
                anyhow::ensure!(i != 3, "job {i} failed");
                Ok(i)
            },
            |i, _| {
                seen.push(i);
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "job 3 failed");
        // one thread: jobs 0..=2 were taken, none after the failure ran
        assert_eq!(seen, vec![0, 1, 2]);
    }
}
