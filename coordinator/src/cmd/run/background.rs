//! Coordinator work that runs while the workers are busy with another phase of the
//! run: a job on a thread of its own ([`Background`]: the validation, the base map's
//! files) and a queue of file writes taken one at a time in order ([`Queue`]: the
//! scenarios' stage files, the report's map images). A job's error stops the run: it is
//! returned when the job is polled between stages or waited for, always before run.json
//! says the run is complete.

use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};

/// A job on a thread of `scope`, its result kept once it has ended.
pub(super) struct Background<'scope, T> {
    /// What the job is, for its error.
    name: &'static str,
    handle: Option<ScopedJoinHandle<'scope, anyhow::Result<T>>>,
    done: Option<T>,
}

impl<'scope, T: Send + 'scope> Background<'scope, T> {
    /// Starts `job` (`name` names it in its error) on a new thread of `scope`.
    pub(super) fn spawn<'env>(
        scope: &'scope Scope<'scope, 'env>,
        name: &'static str,
        job: impl FnOnce() -> anyhow::Result<T> + Send + 'scope,
    ) -> Self {
        Self {
            name,
            handle: Some(scope.spawn(job)),
            done: None,
        }
    }

    /// Waits for the job to end; its error (or panic) is returned.
    fn join_now(&mut self) -> anyhow::Result<()> {
        if let Some(h) = self.handle.take() {
            let r = h
                .join()
                .map_err(|_| anyhow::anyhow!("{}: its thread panicked", self.name))?;
            self.done = Some(r?);
        }
        Ok(())
    }

    /// Takes the job's result if it has ended: its error stops the run at once rather
    /// than at the end.
    pub(super) fn poll(&mut self) -> anyhow::Result<()> {
        if self.handle.as_ref().is_some_and(|h| h.is_finished()) {
            self.join_now()?;
        }
        Ok(())
    }

    /// Waits for the job and returns its result.
    pub(super) fn wait(mut self) -> anyhow::Result<T> {
        self.join_now()?;
        self.done
            .take()
            .ok_or_else(|| anyhow::anyhow!("{}: no result", self.name))
    }
}

/// A job of a [`Queue`].
type Job<'a> = Box<dyn FnOnce() -> anyhow::Result<()> + Send + 'a>;

/// File writes on one thread of a scope, one job at a time in the order given; at most
/// `waiting` jobs wait, with their data, beside the one being written (a push waits
/// for room, with 0 until the writer has ended the previous job). The first failed job
/// ends the queue; its
/// error is returned by the next [`Queue::push`] or by [`Queue::finish`] (which may
/// run on another thread of the scope).
pub(super) struct Queue<'scope> {
    tx: Option<mpsc::SyncSender<Job<'scope>>>,
    writer: Background<'scope, ()>,
}

impl<'scope> Queue<'scope> {
    /// A queue whose writer thread (`name` names it in errors) runs in `scope`, with at
    /// most `waiting` jobs waiting.
    pub(super) fn new<'env>(
        scope: &'scope Scope<'scope, 'env>,
        name: &'static str,
        waiting: usize,
    ) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Job<'scope>>(waiting);
        let writer = Background::spawn(scope, name, move || {
            for job in rx {
                job()?;
            }
            Ok(())
        });
        Self {
            tx: Some(tx),
            writer,
        }
    }

    /// Hands `job` to the writer once there is room for it; the error of a job that
    /// failed before is returned instead.
    pub(super) fn push(
        &mut self,
        job: impl FnOnce() -> anyhow::Result<()> + Send + 'scope,
    ) -> anyhow::Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(Box::new(job)).is_ok(),
            None => false,
        };
        if !sent {
            // the writer stopped: a job failed
            self.tx = None;
            self.writer.join_now()?;
            anyhow::bail!("{}: the writer stopped", self.writer.name);
        }
        Ok(())
    }

    /// Waits for every job handed over; the first error.
    pub(super) fn finish(mut self) -> anyhow::Result<()> {
        self.tx = None;
        self.writer.wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn queued_jobs_run_in_order_and_the_first_error_is_returned() {
        let seen = Mutex::new(Vec::new());
        let err = std::thread::scope(|s| {
            let mut q = Queue::new(s, "test writer", 0);
            for i in 0..3 {
                let seen = &seen;
                q.push(move || {
                    seen.lock().unwrap().push(i);
                    Ok(())
                })
                .unwrap();
            }
            q.push(|| anyhow::bail!("file x.tif: disk full")).unwrap();
            // the writer has stopped by the time a later job is handed over, or at the end
            let later = q.push(|| panic!("a job after a failed one ran"));
            match later {
                Err(e) => e,
                Ok(()) => q.finish().unwrap_err(),
            }
        });
        assert_eq!(err.to_string(), "file x.tif: disk full");
        assert_eq!(*seen.lock().unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn a_background_error_comes_out_of_wait() {
        let r = std::thread::scope(|s| {
            let b: Background<'_, u32> =
                Background::spawn(s, "job", || anyhow::bail!("validation: no map of 2010"));
            b.wait()
        });
        assert_eq!(r.unwrap_err().to_string(), "validation: no map of 2010");
        let r = std::thread::scope(|s| Background::spawn(s, "job", || Ok(7)).wait());
        assert_eq!(r.unwrap(), 7);
    }
}
