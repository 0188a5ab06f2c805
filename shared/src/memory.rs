//! Resident memory of this process, from `/proc/self/status` (Linux): the peak resident
//! set size (`VmHWM`) and the current one (`VmRSS`).

/// Value of `key` (e.g. `"VmHWM"`) in a `/proc/<pid>/status` text, in bytes (the file
/// gives kB = KiB).
pub fn status_bytes(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let n: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") => Some(n * 1024),
            _ => None,
        }
    })
}

fn own(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    status_bytes(&text, key)
}

/// Peak resident set size of this process, bytes (None where `/proc` is not available).
pub fn peak_rss_bytes() -> Option<u64> {
    own("VmHWM")
}

/// Current resident set size of this process, bytes.
pub fn rss_bytes() -> Option<u64> {
    own("VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_values_are_read_in_kib() {
        let text = "Name:\tflus\nVmPeak:\t  300000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(status_bytes(text, "VmHWM"), Some(2048 * 1024));
        assert_eq!(status_bytes(text, "VmRSS"), Some(1024 * 1024));
        assert_eq!(status_bytes(text, "VmSwap"), None);
        // "VmHWMx" is not "VmHWM"
        assert_eq!(status_bytes("VmHWMx:\t5 kB\n", "VmHWM"), None);
    }

    #[test]
    fn this_process_has_a_peak_at_least_its_current_size() {
        let (peak, now) = (peak_rss_bytes().unwrap(), rss_bytes().unwrap());
        assert!(now > 0 && peak >= now, "peak {peak} < current {now}");
    }
}
