//! The loop's state between iterations ([`Checkpoint`]): what a run resumes from, and
//! its file format.

use serde::{Deserialize, Serialize};

use crate::ca::driver::IterationRecord;
use crate::ca::inertia::InertiaState;
use crate::{Error, Result};

/// The state of the loop between iterations: enough to resume a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// Next iteration to run.
    pub t: u32,
    /// Class map (unpadded, row-major); stored as raw bytes after the JSON of the rest
    /// ([`Checkpoint::write`]).
    #[serde(skip)]
    pub map: Vec<u8>,
    /// Inertia, locks and reference gaps.
    pub state: InertiaState,
    /// Smallest sum |gap| so far and iterations since it.
    pub best_sum: u64,
    /// Iterations since `best_sum` last decreased.
    pub since_best: u32,
    /// Records of the iterations run so far.
    pub records: Vec<IterationRecord>,
    /// The run it belongs to (set by the caller that stores it; a checkpoint without one
    /// is never resumed).
    #[serde(default)]
    pub identity: Option<crate::ca::resume::RunIdentity>,
}

impl Checkpoint {
    /// Writes the checkpoint: one line of JSON (everything but the map), a newline, then
    /// the map's bytes, one per cell. A 130 M-cell map is written as it is held, where
    /// text (a JSON array, then a hex string) took a core for seconds and several times
    /// the map's memory.
    pub fn write(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, self)?;
        w.write_all(b"\n")?;
        w.write_all(&self.map)
    }

    /// Reads what [`Self::write`] wrote (`bytes` become the map, without a copy);
    /// `source` names the file in errors.
    pub fn read(mut bytes: Vec<u8>, source: &std::path::Path) -> Result<Self> {
        let bad = |what: String| {
            Error::Data(format!(
                "{}: not a flus checkpoint ({what}); expected a line of JSON, then the map",
                source.display()
            ))
        };
        let line = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no end of line".into()))?;
        let mut c: Checkpoint =
            serde_json::from_slice(&bytes[..line]).map_err(|e| bad(e.to_string()))?;
        bytes.drain(..=line);
        c.map = bytes;
        Ok(c)
    }
}

#[cfg(test)]
mod checkpoint_tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_a_line_of_json_then_its_map_and_reads_back() {
        let c = Checkpoint {
            t: 3,
            map: vec![0, 1, 255, 10, 16],
            state: InertiaState::new(2, 1.0),
            best_sum: 7,
            since_best: 1,
            records: Vec::new(),
            identity: None,
        };
        let mut bytes = Vec::new();
        c.write(&mut bytes).unwrap();
        // the map's 5 bytes as they are (10 is a newline: only the first one ends the JSON)
        assert_eq!(&bytes[bytes.len() - 6..], &[b'\n', 0, 1, 255, 10, 16]);
        let line = bytes.iter().position(|&b| b == b'\n').unwrap();
        assert_eq!(line, bytes.len() - 6);
        let head: serde_json::Value = serde_json::from_slice(&bytes[..line]).unwrap();
        assert_eq!(head["t"], 3);
        assert!(head.get("map").is_none());
        let p = std::path::Path::new("cp.ckpt");
        assert_eq!(Checkpoint::read(bytes, p).unwrap(), c);
        let e = Checkpoint::read(b"{\"t\":3}".to_vec(), p).unwrap_err();
        assert!(
            e.to_string()
                .contains("cp.ckpt: not a flus checkpoint (no end of line)"),
            "{e}"
        );
        let e = Checkpoint::read(b"[1,2]\n\x01".to_vec(), p).unwrap_err();
        assert!(
            e.to_string().contains("cp.ckpt: not a flus checkpoint"),
            "{e}"
        );
    }
}
