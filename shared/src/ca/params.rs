//! CA parameters, independent of any config type.

use crate::rng::stream;
use crate::{Error, Result};

/// Parameters of one CA run (one scenario).
#[derive(Clone, Debug, PartialEq)]
pub struct CaParams {
    /// Number of classes K (class indices 0..K-1; 255 marks an invalid cell).
    pub k: usize,
    /// Neighbourhood side N (odd, >= 3): the N*N window minus its centre.
    pub neighbourhood: usize,
    /// Neighbourhood weight w_k per class.
    pub weights: Vec<f64>,
    /// Conversion matrix, rows = current class (from), columns = future class (to);
    /// 1 allowed, 0 forbidden, or a value in [0, 1].
    pub cost: Vec<Vec<f64>>,
    /// Degree of acceleration `a` of the adaptive inertia (default 0.1).
    pub accelerate: f64,
    /// Stop after this many iterations (default 300).
    pub max_iterations: u32,
    /// Stop when sum |gap| has not decreased for this many iterations (default 10).
    pub stall_iterations: u32,
    /// Seed of the counter-based generator.
    pub seed: u64,
    /// RNG stream: `rng::stream::CA_BASE + scenario index`.
    pub stream: u32,
    /// Class names for messages (empty: classes are named by index).
    pub names: Vec<String>,
    /// Run an infeasible demand anyway (to `max_iterations` or the stall rule) instead of
    /// refusing it (`[ca] unmet = "best_effort"`).
    pub best_effort: bool,
    /// PLUS's random patch seeds (CARS, `[ca] patches`), or None (FLUS's CA).
    pub patches: Option<super::patches::Patches>,
}

impl CaParams {
    /// Parameters with the design's defaults (N = 3, a = 0.1, 300 iterations, S = 10,
    /// scenario 0) for `weights` and `cost`.
    pub fn new(weights: Vec<f64>, cost: Vec<Vec<f64>>, seed: u64) -> Self {
        Self {
            k: weights.len(),
            neighbourhood: 3,
            weights,
            cost,
            accelerate: 0.1,
            max_iterations: 300,
            stall_iterations: 10,
            seed,
            stream: stream::CA_BASE,
            names: Vec::new(),
            best_effort: false,
            patches: None,
        }
    }

    /// How messages name class `c`: `class "forest"`, or `class index 2` without names.
    pub fn label(&self, c: usize) -> String {
        match self.names.get(c) {
            Some(n) => format!("class {n:?}"),
            None => format!("class index {c}"),
        }
    }

    /// Halo width r = (N - 1) / 2.
    pub fn radius(&self) -> usize {
        (self.neighbourhood - 1) / 2
    }

    /// Checks the parameters' shapes and ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Data(format!("CA parameters: {m}")));
        if self.k == 0 || self.k > 254 {
            return bad(format!("k = {} classes, expected 1..=254", self.k));
        }
        if self.neighbourhood < 3
            || self.neighbourhood.is_multiple_of(2)
            || self.neighbourhood > 255
        {
            return bad(format!(
                "neighbourhood = {}, expected an odd size from 3 to 255",
                self.neighbourhood
            ));
        }
        if self.weights.len() != self.k {
            return bad(format!(
                "{} neighbourhood weights, expected one per class ({})",
                self.weights.len(),
                self.k
            ));
        }
        if let Some((i, w)) = self
            .weights
            .iter()
            .enumerate()
            .find(|(_, w)| !w.is_finite() || **w < 0.0)
        {
            return bad(format!("weight of class index {i} is {w}, expected >= 0"));
        }
        if self.cost.len() != self.k || self.cost.iter().any(|r| r.len() != self.k) {
            return bad(format!("cost matrix is not {}x{}", self.k, self.k));
        }
        for (i, row) in self.cost.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                if !(0.0..=1.0).contains(v) {
                    return bad(format!("cost[{i}][{j}] = {v}, expected a value in [0, 1]"));
                }
            }
        }
        if !(self.accelerate.is_finite() && self.accelerate >= 0.0 && self.accelerate < 1.0) {
            return bad(format!(
                "accelerate = {}, expected a value in [0, 1)",
                self.accelerate
            ));
        }
        if self.stall_iterations == 0 {
            return bad("stall_iterations = 0, expected >= 1".into());
        }
        if self.stream >= 1 << 24 {
            return bad(format!("stream = {}, expected < 2^24", self.stream));
        }
        if let Some(p) = &self.patches {
            if self.stream >= crate::rng::stream::CARS_OFFSET {
                return bad(format!(
                    "stream = {} with patches, expected < 2^23 (the patch seeds use stream + 2^23)",
                    self.stream
                ));
            }
            p.validate()
                .map_err(|m| Error::Data(format!("CA parameters: {m}")))?;
        }
        Ok(())
    }
}
