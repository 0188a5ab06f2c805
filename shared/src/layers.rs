//! Continuous layers on the study grid (the drivers), read a run of cells at a time: whole
//! in memory, or from a scratch file ([`crate::stack::load_spilled`]), so that the
//! coordinator of a large study never holds them.

use crate::error::{Error, Result};

/// Cells read at a time by [`values_at`] and the whole-grid passes.
pub const RUN_CELLS: usize = 1 << 18;

/// Layers of the same cells (row-major cell indices of one grid).
pub trait Layers: Sync + std::fmt::Debug {
    /// Number of layers.
    fn count(&self) -> usize;
    /// Cells of layer `layer`.
    fn cells(&self, layer: usize) -> usize;
    /// The values of layer `layer` at cells `first .. first + out.len()` into `out`.
    fn read(&self, layer: usize, first: usize, out: &mut [f32]) -> Result<()>;
}

/// The error of a read outside a layer (a caller's slip, never user input).
pub fn out_of_range(layer: usize, first: usize, n: usize, cells: usize) -> Error {
    Error::Data(format!(
        "layer {layer}: cells {first}..{} read, the layer has {cells}",
        first + n
    ))
}

/// [`Layers::read`] of a layer held in memory as the slice `l`.
pub fn read_slice(l: &[f32], layer: usize, first: usize, out: &mut [f32]) -> Result<()> {
    let src = l
        .get(first..first + out.len())
        .ok_or_else(|| out_of_range(layer, first, out.len(), l.len()))?;
    out.copy_from_slice(src);
    Ok(())
}

/// [`Layers::cells`] of layers held in memory, one slice per layer.
fn slices_cells<T: AsRef<[f32]>>(layers: &[T], layer: usize) -> usize {
    layers.get(layer).map_or(0, |l| l.as_ref().len())
}

/// [`Layers::read`] of layers held in memory, one slice per layer.
fn slices_read<T: AsRef<[f32]>>(
    layers: &[T],
    layer: usize,
    first: usize,
    out: &mut [f32],
) -> Result<()> {
    read_slice(
        layers.get(layer).map_or(&[], |l| l.as_ref()),
        layer,
        first,
        out,
    )
}

impl<T: AsRef<[f32]> + Sync + std::fmt::Debug> Layers for Vec<T> {
    fn count(&self) -> usize {
        self.len()
    }

    fn cells(&self, layer: usize) -> usize {
        slices_cells(self, layer)
    }

    fn read(&self, layer: usize, first: usize, out: &mut [f32]) -> Result<()> {
        slices_read(self, layer, first, out)
    }
}

impl<T: AsRef<[f32]> + Sync + std::fmt::Debug, const N: usize> Layers for [T; N] {
    fn count(&self) -> usize {
        N
    }

    fn cells(&self, layer: usize) -> usize {
        slices_cells(self, layer)
    }

    fn read(&self, layer: usize, first: usize, out: &mut [f32]) -> Result<()> {
        slices_read(self, layer, first, out)
    }
}

/// The values of layer `layer` at `cells` (in the order given; a cell may repeat),
/// reading only the runs of [`RUN_CELLS`] cells that hold one of them.
pub fn values_at(layers: &dyn Layers, layer: usize, cells: &[usize]) -> Result<Vec<f32>> {
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_unstable_by_key(|&i| cells[i]);
    let n = layers.cells(layer);
    let mut out = vec![0f32; cells.len()];
    let mut run = Vec::new();
    let mut run_first = usize::MAX;
    for i in order {
        let c = cells[i];
        if c >= n {
            return Err(out_of_range(layer, c, 1, n));
        }
        if run_first == usize::MAX || c >= run_first + run.len() {
            run_first = c - c % RUN_CELLS;
            run.resize((n - run_first).min(RUN_CELLS), 0.0);
            layers.read(layer, run_first, &mut run)?;
        }
        out[i] = run[c - run_first];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_at_gives_each_cell_its_value_in_the_order_asked() {
        // two runs and a partial third: cells are their own values
        let n = 2 * RUN_CELLS + 10;
        let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let layers: Vec<&[f32]> = vec![&a];
        let cells = [n - 1, 3, RUN_CELLS, 3, 0, RUN_CELLS - 1];
        let got = values_at(&layers, 0, &cells).unwrap();
        let want: Vec<f32> = cells.iter().map(|&c| c as f32).collect();
        assert_eq!(got, want);
        let e = values_at(&layers, 0, &[n]).unwrap_err();
        assert!(
            e.to_string().contains(&format!("cells {n}..{}", n + 1)),
            "{e}"
        );
    }
}
