//! The tiles of a CA run in this process ([`LocalTiles`]), stepped in parallel with rayon.

use rayon::prelude::*;

use super::{Backend, MapView, StepSummary};
use crate::ca::acceptance::{KeyRequest, Thresholds};
use crate::ca::commit::commit;
use crate::ca::driver::CaInput;
use crate::ca::params::CaParams;
use crate::ca::step::{
    tile_step, ClassWindow, Proposal, StepParams, TileProposals, TileRect, TileStatic,
};
use crate::ca::BUCKETS;
use crate::{Error, Result};

/// The tiles in this process, stepped in parallel with rayon.
pub struct LocalTiles<'a> {
    rects: Vec<TileRect>,
    outs: Vec<TileProposals>,
    /// The input's suitability in fixed point ([`super::suitability_fixed`]).
    suitability: Vec<u16>,
    restricted: &'a [bool],
    width: usize,
    k: usize,
    /// The run's start map, kept to pad it for transition mode.
    classes: &'a [u8],
    height: usize,
    /// The start map padded like the class map (transition mode only; built at the
    /// first step that needs it).
    start: Vec<u8>,
}

impl<'a> LocalTiles<'a> {
    /// Local tiles `rects` over `input`'s static layers.
    pub fn new(rects: Vec<TileRect>, input: &CaInput<'a>, k: usize) -> Self {
        let n = rects.len();
        Self {
            rects,
            outs: (0..n).map(|_| TileProposals::default()).collect(),
            suitability: crate::ca::step::suitability_fixed(input.suitability),
            restricted: input.restricted,
            width: input.width,
            k,
            classes: input.classes,
            height: input.height,
            start: Vec::new(),
        }
    }
}

impl Backend for LocalTiles<'_> {
    fn propose(
        &mut self,
        params: &CaParams,
        step: &StepParams,
        map: &MapView,
        sum: &mut StepSummary,
    ) -> Result<()> {
        let (w, k) = (self.width, self.k);
        if step.transitions && self.start.is_empty() {
            self.start = crate::ca::window::pad(self.classes, w, self.height, params.radius())?;
        }
        let (suit, restricted, start) = (&self.suitability[..], self.restricted, &self.start);
        if suit.len() != restricted.len() * k {
            return Err(Error::Data(format!(
                "local tiles: {} suitability values for {} cells x {k} classes",
                suit.len(),
                restricted.len()
            )));
        }
        self.rects
            .par_iter()
            .zip(self.outs.par_iter_mut())
            .for_each(|(rect, out)| {
                let window = ClassWindow {
                    data: &map.padded[rect.y0 * map.stride + rect.x0..],
                    stride: map.stride,
                };
                let origin = rect.y0 * w + rect.x0;
                let stat = TileStatic {
                    suitability: &suit[origin * k..],
                    restricted: &restricted[origin..],
                    stride: w,
                    start_classes: if start.is_empty() {
                        &[]
                    } else {
                        &start[rect.y0 * map.stride + rect.x0..]
                    },
                };
                tile_step(params, step, rect, &window, &stat, out);
            });
        sum.histogram.clear();
        sum.histogram.resize(BUCKETS * k * k, 0);
        for out in &self.outs {
            for (a, &b) in sum.histogram.iter_mut().zip(&out.histogram) {
                *a += b as u64;
            }
            sum.proposals += out.proposals.len() as u64;
            sum.raw_proposals += out.raw_proposals;
            sum.cells += out.cells;
            sum.skipped_uniform += out.skipped_uniform;
            sum.skipped_closed += out.skipped_closed;
        }
        Ok(())
    }

    fn exact(&mut self, req: &KeyRequest, _map: &MapView, out: &mut Vec<Proposal>) -> Result<()> {
        out.clear();
        for o in &self.outs {
            o.in_bucket(req.bucket, &req.touch, out);
        }
        Ok(())
    }

    fn commit(
        &mut self,
        thresholds: &Thresholds,
        _map: &MapView,
        changed: &mut Vec<(u64, u8)>,
    ) -> Result<()> {
        let parts: Vec<Vec<(u64, u8)>> = self
            .outs
            .par_iter()
            .map(|o| {
                let mut ch = Vec::new();
                commit(&o.proposals, thresholds, &mut ch);
                ch
            })
            .collect();
        changed.clear();
        for p in parts {
            changed.extend(p);
        }
        changed.sort_unstable();
        Ok(())
    }
}
