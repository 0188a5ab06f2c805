//! How long some worker was busy: the wall time during which at least one call to a
//! worker was in flight (any phase, any session, the GWR fits too). The rest of a
//! run's wall time is the coordinator's alone, the serial part of a study (Amdahl's
//! law): `flus bench` reports it as `coordinator_only_fraction`.

use std::sync::Mutex;
use std::time::Instant;

/// Calls in flight, since when, and the busy seconds accumulated before that.
struct Busy {
    in_flight: usize,
    since: Option<Instant>,
    seconds: f64,
}

static BUSY: Mutex<Busy> = Mutex::new(Busy {
    in_flight: 0,
    since: None,
    seconds: 0.0,
});

/// A call in flight until dropped.
pub struct Guard(());

/// Marks a call to a worker in flight until the guard is dropped.
pub fn enter() -> Guard {
    if let Ok(mut b) = BUSY.lock() {
        if b.in_flight == 0 {
            b.since = Some(Instant::now());
        }
        b.in_flight += 1;
    }
    Guard(())
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(mut b) = BUSY.lock() {
            b.in_flight = b.in_flight.saturating_sub(1);
            if b.in_flight == 0 {
                if let Some(s) = b.since.take() {
                    b.seconds += s.elapsed().as_secs_f64();
                }
            }
        }
    }
}

/// Wall seconds so far during which at least one worker call was in flight.
pub fn seconds() -> f64 {
    BUSY.lock()
        .map(|b| b.seconds + b.since.map_or(0.0, |s| s.elapsed().as_secs_f64()))
        .unwrap_or(0.0)
}

/// Tests that make worker calls (and so count busy time) hold this, so that the test
/// of the busy time sees only its own calls.
#[cfg(test)]
pub(crate) static TEST_SERIAL: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_calls_count_once_and_a_gap_not_at_all() {
        let _serial = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let t0 = seconds();
        let a = enter();
        let b = enter();
        std::thread::sleep(std::time::Duration::from_millis(30));
        drop(a);
        std::thread::sleep(std::time::Duration::from_millis(30));
        drop(b);
        let busy = seconds() - t0;
        std::thread::sleep(std::time::Duration::from_millis(50));
        let later = seconds() - t0;
        // two overlapping calls over ~60 ms: ~60 ms busy, not 90; the idle 50 ms after
        // them add nothing
        assert!((0.055..0.5).contains(&busy), "{busy}");
        assert_eq!(later, busy);
    }
}
