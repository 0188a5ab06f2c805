//! Grid windows, halos and padding as `ndarray` views: the class map padded with
//! [`INVALID`] by the halo width, and the window of a tile (its core grown by the halo,
//! clipped cells [`INVALID`]) cut from a plain or a padded map.

use ndarray::{s, Array2, ArrayView2};

use super::step::TileRect;
use super::INVALID;
use crate::{Error, Result};

/// A row-major `width` x `height` map as a 2-D view (rows, columns).
pub fn grid_view<T>(map: &[T], width: usize, height: usize) -> Result<ArrayView2<'_, T>> {
    ArrayView2::from_shape((height, width), map).map_err(|_| {
        Error::Data(format!(
            "a map of {} cells on a grid of {width} x {height} = {} cells",
            map.len(),
            width * height
        ))
    })
}

/// `map` (`width` x `height`, row-major) padded by `r` [`INVALID`] cells on every side:
/// (width + 2r) x (height + 2r), row-major.
pub fn pad(map: &[u8], width: usize, height: usize, r: usize) -> Result<Vec<u8>> {
    let view = grid_view(map, width, height)?;
    let mut out = Array2::from_elem((height + 2 * r, width + 2 * r), INVALID);
    out.slice_mut(s![r..r + height, r..r + width]).assign(&view);
    Ok(out.into_raw_vec_and_offset().0)
}

/// The inverse of [`pad`]: the `width` x `height` map inside `padded` (padded by `r` on
/// every side), row-major.
pub fn unpad(padded: &[u8], width: usize, height: usize, r: usize) -> Vec<u8> {
    let view = ArrayView2::from_shape((height + 2 * r, width + 2 * r), padded)
        .expect("a map padded by pad: (height + 2r) x (width + 2r) cells");
    rows_of(view.slice(s![r..r + height, r..r + width]))
}

/// The cells of `view` (a window of a row-major map) row by row, a row copied at once
/// (an element-wise walk of a 20 M-cell map took a tenth of a second).
fn rows_of(view: ArrayView2<'_, u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(view.len());
    for row in view.rows() {
        match row.as_slice() {
            Some(cells) => out.extend_from_slice(cells),
            None => out.extend(row.iter().copied()),
        }
    }
    out
}

/// The window of tile `rect` with halo `r` (its core grown by `r` on every side), cut
/// from the plain map `map` of the tile's grid (`rect.grid_width` x `height`): cells off
/// the grid are [`INVALID`]. (width + 2r) x (height + 2r), row-major.
pub fn tile_window(map: &[u8], height: usize, rect: &TileRect, r: usize) -> Result<Vec<u8>> {
    let view = grid_view(map, rect.grid_width, height)?;
    let (ww, wh) = (rect.width + 2 * r, rect.height + 2 * r);
    let mut out = Array2::from_elem((wh, ww), INVALID);
    // the window's extent on the grid, clipped
    let (gy0, gx0) = (rect.y0.saturating_sub(r), rect.x0.saturating_sub(r));
    let gy1 = (rect.y0 + rect.height + r).min(height);
    let gx1 = (rect.x0 + rect.width + r).min(rect.grid_width);
    // where that extent lands in the window
    let (oy, ox) = (gy0 + r - rect.y0, gx0 + r - rect.x0);
    out.slice_mut(s![oy..oy + (gy1 - gy0), ox..ox + (gx1 - gx0)])
        .assign(&view.slice(s![gy0..gy1, gx0..gx1]));
    Ok(out.into_raw_vec_and_offset().0)
}

/// The window of tile `rect` with halo `r`, cut from `padded`, a map padded by `r`
/// ([`pad`]) with `stride` cells per padded row.
pub fn padded_tile_window(padded: &[u8], stride: usize, rect: &TileRect, r: usize) -> Vec<u8> {
    let rows = padded.len() / stride.max(1);
    let view = ArrayView2::from_shape((rows, stride), &padded[..rows * stride])
        .expect("rows x stride cells");
    rows_of(view.slice(s![
        rect.y0..rect.y0 + rect.height + 2 * r,
        rect.x0..rect.x0 + rect.width + 2 * r
    ]))
}

/// Sets, in `window` (the window of tile `rect` with halo `r`, as [`tile_window`] cuts
/// it), the cells of `changes` (global cell index, class) that lie in it, core or halo;
/// the others are ignored. Returns how many were set.
pub fn apply_in_window(
    window: &mut [u8],
    rect: &TileRect,
    r: usize,
    changes: &[(u64, u8)],
) -> usize {
    let (ww, wh) = (rect.width + 2 * r, rect.height + 2 * r);
    let gw = rect.grid_width as u64;
    let mut set = 0;
    for &(cell, class) in changes {
        let (x, y) = ((cell % gw) as usize, (cell / gw) as usize);
        // window column and row: (x - x0 + r, y - y0 + r), when both are in range
        let (Some(wx), Some(wy)) = ((x + r).checked_sub(rect.x0), (y + r).checked_sub(rect.y0))
        else {
            continue;
        };
        if wx < ww && wy < wh {
            if let Some(v) = window.get_mut(wy * ww + wx) {
                *v = class;
                set += 1;
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_map_has_an_invalid_ring_of_the_halo_width() {
        // 3 x 2 map, r = 1: 5 x 4, written out by hand
        let p = pad(&[1, 2, 3, 4, 5, 6], 3, 2, 1).unwrap();
        let x = INVALID;
        #[rustfmt::skip]
        let want = vec![
            x, x, x, x, x,
            x, 1, 2, 3, x,
            x, 4, 5, 6, x,
            x, x, x, x, x,
        ];
        assert_eq!(p, want);
        let e = pad(&[1, 2, 3], 3, 2, 1).unwrap_err().to_string();
        assert!(e.contains("3 cells") && e.contains("3 x 2"), "{e}");
    }

    #[test]
    fn unpad_takes_the_map_out_of_any_ring() {
        // 2 x 3 map inside a ring of 2 cells written out by hand (6 x 7), ring cells 9
        #[rustfmt::skip]
        let padded = [
            9, 9, 9, 9, 9, 9,
            9, 9, 9, 9, 9, 9,
            9, 9, 1, 2, 9, 9,
            9, 9, 3, 4, 9, 9,
            9, 9, 5, 6, 9, 9,
            9, 9, 9, 9, 9, 9,
            9, 9, 9, 9, 9, 9,
        ];
        assert_eq!(unpad(&padded, 2, 3, 2), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(unpad(&[7, 8], 2, 1, 0), vec![7, 8]);
    }

    #[test]
    fn a_tile_window_is_the_same_from_the_plain_and_the_padded_map() {
        // 4 x 3 grid, cells numbered 0..12; the tile is the 2 x 2 core at (2, 1)
        let map: Vec<u8> = (0..12).collect();
        let rect = TileRect {
            x0: 2,
            y0: 1,
            width: 2,
            height: 2,
            grid_width: 4,
        };
        let w = tile_window(&map, 3, &rect, 1).unwrap();
        let x = INVALID;
        // rows 0..3 and columns 1..4 of the grid, the column right of the grid invalid
        #[rustfmt::skip]
        let want = vec![
            1, 2, 3, x,
            5, 6, 7, x,
            9, 10, 11, x,
            x, x, x, x,
        ];
        assert_eq!(w, want);
        let padded = pad(&map, 4, 3, 1).unwrap();
        assert_eq!(padded_tile_window(&padded, 6, &rect, 1), want);
    }

    #[test]
    fn changes_are_set_in_the_window_only_core_and_halo() {
        // 4 x 3 grid (cells 0..12); the tile is the 2 x 2 core at (2, 1) with r = 1, so
        // its window spans grid columns 1..5 and rows 0..4 (column 4 and row 3 are off
        // the grid): 4 x 4 cells, window cell (wx, wy) = grid cell (wx + 1, wy + 0)
        let rect = TileRect {
            x0: 2,
            y0: 1,
            width: 2,
            height: 2,
            grid_width: 4,
        };
        let mut win = vec![0u8; 16];
        let changes = [
            (1, 7),  // grid (1, 0): halo, window (0, 0) = index 0
            (0, 9),  // grid (0, 0): left of the window, ignored
            (11, 5), // grid (3, 2): core, window (2, 2) = index 10
            (7, 4),  // grid (3, 1): core, window (2, 1) = index 6
            (8, 3),  // grid (0, 2): left of the window, ignored
        ];
        assert_eq!(apply_in_window(&mut win, &rect, 1, &changes), 3);
        let mut want = vec![0u8; 16];
        want[0] = 7;
        want[10] = 5;
        want[6] = 4;
        assert_eq!(win, want);
    }
}
