//! Training: settings, the mini-batch gradient descent with momentum, and the report.

use serde::{Deserialize, Serialize};

use super::network::{param_count, Network, Scratch};
use super::normalise::{check_layers, Normalisation};
use super::sample::{draw_sample, Sampling, INVALID_CLASS};
use crate::error::{Error, Result};
use crate::layers::{self, Layers};
use crate::rng::{stream, CounterRng};

/// ANN training settings (docs/design.md §3). The defaults ([`AnnSettings::default`]) are:
///
/// | field | default | meaning |
/// |---|---|---|
/// | `hidden` | `None` = floor(sqrt(drivers)) + 10 | hidden sigmoid units |
/// | `sampling` | `Uniform` | equal sample per class |
/// | `per_mille` | 20 | sample size, per mille of valid cells |
/// | `epochs` | 100 | passes over the training sample (at most) |
/// | `learning_rate` | 0.1 | step of the gradient descent |
/// | `momentum` | 0.9 | momentum of the gradient descent |
/// | `batch_size` | 32 | samples per mini-batch |
/// | `holdout` | 0.2 | share of each class's sample held out |
/// | `early_stop_patience` | `Some(15)` | stop after this many epochs without a better held-out loss, keep the best weights |
///
/// They are the defaults of the study config's `[ann]` (one source: [`From<&AnnConfig>`]),
/// so the library, `flus validate`, `flus simulate` and `flus run` train alike.
///
/// [`From<&AnnConfig>`]: crate::config::AnnConfig
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnnSettings {
    /// Hidden units; `None` = floor(sqrt(number of drivers)) + 10.
    pub hidden: Option<usize>,
    /// How the training cells are drawn.
    pub sampling: Sampling,
    /// Sample size in per mille of the valid cells (0 < per_mille <= 1000).
    pub per_mille: f64,
    /// Number of epochs (the maximum when early stopping is on).
    pub epochs: usize,
    /// Learning rate (> 0).
    pub learning_rate: f64,
    /// Momentum (0 <= momentum < 1).
    pub momentum: f64,
    /// Mini-batch size (>= 1).
    pub batch_size: usize,
    /// Share of each class's sample held out for the check (0 <= holdout < 1).
    pub holdout: f64,
    /// Early stop after this many epochs without a lower held-out loss (needs a holdout);
    /// the weights of the best epoch are kept. `None` = fixed epochs, last weights.
    pub early_stop_patience: Option<usize>,
}

impl Default for AnnSettings {
    /// The settings of a study whose `[ann]` section is empty: one set of defaults for
    /// the library and the command line.
    fn default() -> Self {
        Self::from(&crate::config::AnnConfig::default())
    }
}

impl From<&crate::config::AnnConfig> for AnnSettings {
    /// The settings of a study's `[ann]` section (`early_stop_patience` 0 or no holdout =
    /// fixed epochs).
    fn from(a: &crate::config::AnnConfig) -> Self {
        AnnSettings {
            hidden: a.hidden,
            sampling: match a.sampling {
                crate::config::SamplingMode::Uniform => Sampling::Uniform,
                crate::config::SamplingMode::Proportional => Sampling::Proportional,
            },
            per_mille: a.sample_per_mille,
            epochs: a.epochs,
            learning_rate: a.learning_rate,
            momentum: a.momentum,
            batch_size: a.batch_size,
            holdout: a.holdout,
            early_stop_patience: if a.early_stop_patience == 0 || a.holdout == 0.0 {
                None
            } else {
                Some(a.early_stop_patience)
            },
        }
    }
}

impl AnnSettings {
    /// Checks every field, naming the one that is wrong and what was expected.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, msg: String| Err(Error::Data(format!("ANN setting `{key}`: {msg}")));
        if self.hidden == Some(0) {
            return bad("hidden", "0; expected at least 1 hidden unit".into());
        }
        if !(self.per_mille > 0.0 && self.per_mille <= 1000.0) {
            return bad(
                "per_mille",
                format!("{}; expected 0 < per_mille <= 1000", self.per_mille),
            );
        }
        if self.epochs == 0 {
            return bad("epochs", "0; expected at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(
                "learning_rate",
                format!("{}; expected a number > 0", self.learning_rate),
            );
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(
                "momentum",
                format!("{}; expected 0 <= momentum < 1", self.momentum),
            );
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0; expected at least 1".into());
        }
        if !(0.0..1.0).contains(&self.holdout) {
            return bad(
                "holdout",
                format!("{}; expected 0 <= holdout < 1", self.holdout),
            );
        }
        if let Some(p) = self.early_stop_patience {
            if p == 0 {
                return bad("early_stop_patience", "0; expected at least 1 epoch".into());
            }
            if self.holdout == 0.0 {
                return bad(
                    "early_stop_patience",
                    "set, but `holdout` is 0: early stopping needs held-out cells".into(),
                );
            }
        }
        Ok(())
    }

    /// The number of hidden units for `n_drivers` drivers.
    pub fn hidden_units(&self, n_drivers: usize) -> usize {
        self.hidden
            .unwrap_or_else(|| (n_drivers as f64).sqrt().floor() as usize + 10)
    }
}

/// What the ANN is trained on: driver layers and the class layer on one grid.
#[derive(Clone, Copy, Debug)]
pub struct TrainingData<'a> {
    /// Raw driver values, `width * height` cells (row-major) per driver.
    pub drivers: &'a dyn Layers,
    /// Driver names (for errors, the report and the network), one per driver.
    pub driver_names: &'a [String],
    /// Class index 0..K-1 per cell, [`INVALID_CLASS`] (255) for invalid cells. The
    /// caller intersects all nodata masks into it.
    pub classes: &'a [u8],
    /// Class names, K of them (band names of the suitability raster).
    pub class_names: &'a [String],
    /// Columns of the grid (to name a cell's row and column in errors).
    pub width: usize,
}

/// Figures of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Valid cells of the class layer.
    pub valid_cells: usize,
    /// Hidden units used.
    pub hidden: usize,
    /// Training cells per class.
    pub train_per_class: Vec<usize>,
    /// Held-out cells per class.
    pub holdout_per_class: Vec<usize>,
    /// Drivers that are constant over the valid cells (normalised to 0, no information).
    pub constant_drivers: Vec<String>,
    /// Epochs run (fewer than the setting when stopped early).
    pub epochs_run: usize,
    /// Epoch (1-based) whose weights were kept.
    pub best_epoch: usize,
    /// Share of training samples whose most suitable class is their true class.
    pub train_accuracy: f64,
    /// Same on the held-out samples (`None` without a holdout).
    pub holdout_accuracy: Option<f64>,
    /// Mean cross-entropy on the training samples, with the kept weights.
    pub train_loss: f64,
    /// Mean cross-entropy on the held-out samples, with the kept weights.
    pub holdout_loss: Option<f64>,
}

/// A trained network and its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainedAnn {
    /// The network (with its normalisation), ready for [`super::suitability()`].
    pub network: Network,
    /// The training figures.
    pub report: TrainReport,
}

/// Normalised driver rows and classes of some cells: the rows [`fit`] trains on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SampleRows {
    /// Global cell index of each row (row-major over the grid, ascending): the key of
    /// the row's place in every epoch's shuffle.
    pub cells: Vec<u64>,
    /// Normalised driver values, `drivers` per row.
    pub xs: Vec<f64>,
    /// Class index of each row.
    pub ys: Vec<u8>,
}

/// Everything [`fit`] needs: the drawn sample's normalised rows and what the network
/// and the report take from the whole grid. [`prepare`] builds it from the grid; it
/// can be sent elsewhere (a worker) and fitted there with the same bits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingSet {
    /// Driver names, one per driver.
    pub driver_names: Vec<String>,
    /// Class names, K of them.
    pub class_names: Vec<String>,
    /// The normalisation fitted over the valid cells.
    pub normalisation: Normalisation,
    /// Hidden units.
    pub hidden: usize,
    /// Valid cells of the class layer.
    pub valid_cells: usize,
    /// Training cells per class.
    pub train_per_class: Vec<usize>,
    /// Held-out cells per class.
    pub holdout_per_class: Vec<usize>,
    /// Drivers that are constant over the valid cells.
    pub constant_drivers: Vec<String>,
    /// The training rows.
    #[serde(skip)]
    pub train: SampleRows,
    /// The held-out rows.
    #[serde(skip)]
    pub holdout: SampleRows,
}

impl TrainingSet {
    /// Checks that the rows fit the names (a set received from elsewhere), naming what
    /// is wrong.
    pub fn check(&self) -> Result<()> {
        let (d, k) = (self.driver_names.len(), self.class_names.len());
        let bad = |m: String| Err(Error::Data(format!("ANN training set: {m}")));
        if d == 0 || k < 2 || self.hidden == 0 {
            return bad(format!(
                "{d} driver(s), {k} class(es), {} hidden unit(s); expected >= 1, >= 2, >= 1",
                self.hidden
            ));
        }
        if self.normalisation.min.len() != d || self.normalisation.max.len() != d {
            return bad(format!(
                "normalisation of {} driver(s); expected {d}",
                self.normalisation.min.len()
            ));
        }
        for (what, rows) in [("training", &self.train), ("held-out", &self.holdout)] {
            let n = rows.cells.len();
            if rows.xs.len() != n * d || rows.ys.len() != n {
                return bad(format!(
                    "{what} rows: {n} cells, {} values, {} classes; expected {} values and                      {n} classes",
                    rows.xs.len(),
                    rows.ys.len(),
                    n * d
                ));
            }
            if let Some(&y) = rows.ys.iter().find(|&&y| y as usize >= k) {
                return bad(format!("{what} rows: class index {y}; expected below {k}"));
            }
        }
        if self.train.cells.is_empty() {
            return Err(Error::Data(
                "ANN: the training sample is empty; raise `per_mille` or lower `holdout`".into(),
            ));
        }
        Ok(())
    }

    /// Bytes of the rows (what sending the set costs, about).
    pub fn row_bytes(&self) -> usize {
        [&self.train, &self.holdout]
            .iter()
            .map(|r| r.cells.len() * 8 + r.xs.len() * 8 + r.ys.len())
            .sum()
    }
}

fn gather(data: &TrainingData, norm: &Normalisation, cells: Vec<usize>) -> Result<SampleRows> {
    let d = data.drivers.count();
    let raw = (0..d)
        .map(|i| layers::values_at(data.drivers, i, &cells))
        .collect::<Result<Vec<_>>>()?;
    let mut xs = Vec::with_capacity(cells.len() * d);
    let mut ys = Vec::with_capacity(cells.len());
    for (j, &c) in cells.iter().enumerate() {
        for (i, layer) in raw.iter().enumerate() {
            xs.push(norm.apply(i, layer[j]));
        }
        ys.push(data.classes[c]);
    }
    Ok(SampleRows {
        cells: cells.into_iter().map(|c| c as u64).collect(),
        xs,
        ys,
    })
}

fn accuracy(net: &Network, s: &SampleRows) -> f64 {
    if s.ys.is_empty() {
        return 0.0;
    }
    let mut sc = net.scratch();
    let d = net.n_drivers();
    let mut right = 0usize;
    for (x, &y) in s.xs.chunks_exact(d).zip(&s.ys) {
        let super::network::Scratch { h, z, .. } = &mut sc;
        net.forward(x, h, z);
        let mut best = 0;
        for c in 1..z.len() {
            if z[c] > z[best] {
                best = c;
            }
        }
        right += (best == y as usize) as usize;
    }
    right as f64 / s.ys.len() as f64
}

/// Trains the suitability network on `data` with `settings` and `seed`:
/// [`prepare`] then [`fit`].
pub fn train(data: &TrainingData, settings: &AnnSettings, seed: u64) -> Result<TrainedAnn> {
    fit(&prepare(data, settings, seed)?, settings, seed)
}

/// The first half of [`train`], which reads the grid: the normalisation fitted over
/// the valid cells, the sample drawn (see [`super::sample`]: keyed on the global cell,
/// so the same for any tiling or thread count) and its rows gathered and normalised.
pub fn prepare(data: &TrainingData, settings: &AnnSettings, seed: u64) -> Result<TrainingSet> {
    settings.validate()?;
    let cells = data.classes.len();
    check_layers(data.drivers, data.driver_names, cells)?;
    let valid: Vec<bool> = data.classes.iter().map(|&c| c != INVALID_CLASS).collect();
    let norm = Normalisation::fit_layers(data.drivers, data.driver_names, &valid, data.width)?;
    let constant_drivers: Vec<String> = norm
        .constant_drivers()
        .into_iter()
        .map(|i| data.driver_names[i].clone())
        .collect();
    for name in &constant_drivers {
        tracing::warn!("ANN: driver `{name}` is constant over the valid cells; it normalises to 0 and carries no information");
    }
    let sample = draw_sample(
        data.classes,
        data.class_names,
        settings.sampling,
        settings.per_mille,
        settings.holdout,
        seed,
    )?;
    if sample.train.is_empty() {
        return Err(Error::Data(
            "ANN: the training sample is empty; raise `per_mille` or lower `holdout`".into(),
        ));
    }
    let train = gather(data, &norm, sample.train)?;
    let holdout = gather(data, &norm, sample.holdout)?;
    Ok(TrainingSet {
        driver_names: data.driver_names.to_vec(),
        class_names: data.class_names.to_vec(),
        normalisation: norm,
        hidden: settings.hidden_units(data.drivers.count()),
        valid_cells: sample.valid_cells,
        train_per_class: sample.train_per_class,
        holdout_per_class: sample.holdout_per_class,
        constant_drivers,
        train,
        holdout,
    })
}

/// The second half of [`train`], which reads only the set's rows (so it can run on
/// another machine with the same bits): weights initialised (Glorot uniform, stream
/// `ANN_INIT`); per epoch the training rows are ordered by a key from stream
/// `ANN_SHUFFLE` (iteration = epoch, counter = the row's global cell) and cut into
/// mini-batches; each batch's mean cross-entropy gradient updates the weights by
/// gradient descent with momentum. Single-threaded in f64 with sums in sample order,
/// so the weights are bit-identical for any thread count. With early stopping, the
/// weights of the epoch with the lowest held-out loss are kept.
pub fn fit(set: &TrainingSet, settings: &AnnSettings, seed: u64) -> Result<TrainedAnn> {
    settings.validate()?;
    set.check()?;
    let hold_set = &set.holdout;
    let (d, k, hidden) = (set.driver_names.len(), set.class_names.len(), set.hidden);
    let mut net = Network::initial(
        set.driver_names.clone(),
        set.class_names.clone(),
        set.normalisation.clone(),
        hidden,
        seed,
    );
    let mut sgd = Sgd::new(param_count(d, hidden, k), settings.batch_size, d);
    let mut sc = net.scratch();
    let rng = CounterRng::new(seed);
    let mut best: Option<(f64, Vec<f64>, usize)> = None;
    let mut epochs_run = 0;
    for epoch in 0..settings.epochs {
        epochs_run = epoch + 1;
        sgd.epoch(&mut net, &mut sc, &set.train, settings, &rng, epoch);
        if net.params().iter().any(|p| !p.is_finite()) {
            return Err(Error::Data(format!(
                "ANN training diverged at epoch {} (a weight became infinite or NaN); lower \
                 `learning_rate` (now {})",
                epoch + 1,
                settings.learning_rate
            )));
        }
        // progress: about ten lines per training, whatever its size
        if (epoch + 1) % settings.epochs.div_ceil(10).max(1) == 0 {
            tracing::info!(
                "ANN training: epoch {} of at most {}",
                epoch + 1,
                settings.epochs
            );
        }
        if let Some(patience) = settings.early_stop_patience {
            let loss = net.loss_and_gradient(&hold_set.xs, &hold_set.ys, &mut sc, None);
            let improved = best.as_ref().is_none_or(|b| loss < b.0);
            if improved {
                best = Some((loss, net.params().to_vec(), epoch + 1));
            } else if epoch + 1 - best.as_ref().map_or(0, |b| b.2) >= patience {
                break;
            }
        }
    }
    let best_epoch = match best {
        Some((_, params, e)) => {
            net.params_mut().copy_from_slice(&params);
            e
        }
        None => epochs_run,
    };
    let report = report(set, &net, &mut sc, epochs_run, best_epoch);
    tracing::info!(
        "ANN trained: {} epochs (kept epoch {}), accuracy train {:.4}, held-out {:?}",
        report.epochs_run,
        report.best_epoch,
        report.train_accuracy,
        report.holdout_accuracy
    );
    Ok(TrainedAnn {
        network: net,
        report,
    })
}

/// Mini-batch gradient descent with momentum: the velocity, and the buffers every epoch
/// reuses.
struct Sgd {
    velocity: Vec<f64>,
    grad: Vec<f64>,
    /// (shuffle key, row) of every training row.
    order: Vec<(u64, usize)>,
    /// A batch's rows and classes.
    bx: Vec<f64>,
    by: Vec<u8>,
    /// Drivers per row.
    d: usize,
}

impl Sgd {
    /// For a network of `n_params` weights, batches of `batch_size` rows of `d` drivers.
    fn new(n_params: usize, batch_size: usize, d: usize) -> Self {
        Self {
            velocity: vec![0.0; n_params],
            grad: vec![0.0; n_params],
            order: Vec::new(),
            bx: Vec::with_capacity(batch_size * d),
            by: Vec::with_capacity(batch_size),
            d,
        }
    }

    /// One epoch: the rows ordered by their key of stream `ANN_SHUFFLE` (iteration =
    /// epoch, counter = the row's global cell), then a momentum update per mini-batch.
    fn epoch(
        &mut self,
        net: &mut Network,
        sc: &mut Scratch,
        rows: &SampleRows,
        settings: &AnnSettings,
        rng: &CounterRng,
        epoch: usize,
    ) {
        let d = self.d;
        self.order.clear();
        self.order
            .extend(rows.cells.iter().enumerate().map(|(i, &cell)| {
                let b = rng.block(stream::ANN_SHUFFLE, epoch as u32, cell, 0);
                (((b[0] as u64) << 32) | b[1] as u64, i)
            }));
        // Ties (astronomically rare) fall back on the sample's position = cell order.
        self.order.sort_unstable();
        for batch in self.order.chunks(settings.batch_size) {
            self.bx.clear();
            self.by.clear();
            for &(_, i) in batch {
                self.bx.extend_from_slice(&rows.xs[i * d..(i + 1) * d]);
                self.by.push(rows.ys[i]);
            }
            self.grad.iter_mut().for_each(|g| *g = 0.0);
            net.loss_and_gradient(&self.bx, &self.by, sc, Some(&mut self.grad));
            let moved = net.params_mut().iter_mut().zip(&mut self.velocity);
            for ((p, v), g) in moved.zip(&self.grad) {
                *v = settings.momentum * *v - settings.learning_rate * g;
                *p += *v;
            }
        }
    }
}

/// The training report of `net` fitted on `set`.
fn report(
    set: &TrainingSet,
    net: &Network,
    sc: &mut Scratch,
    epochs_run: usize,
    best_epoch: usize,
) -> TrainReport {
    let (train_set, hold_set) = (&set.train, &set.holdout);
    let has_holdout = !hold_set.ys.is_empty();
    TrainReport {
        valid_cells: set.valid_cells,
        hidden: set.hidden,
        train_per_class: set.train_per_class.clone(),
        holdout_per_class: set.holdout_per_class.clone(),
        constant_drivers: set.constant_drivers.clone(),
        epochs_run,
        best_epoch,
        train_accuracy: accuracy(net, train_set),
        holdout_accuracy: has_holdout.then(|| accuracy(net, hold_set)),
        train_loss: net.loss_and_gradient(&train_set.xs, &train_set.ys, sc, None),
        holdout_loss: has_holdout
            .then(|| net.loss_and_gradient(&hold_set.xs, &hold_set.ys, sc, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 40 x 50 grid with 2 drivers and 3 classes that the drivers separate (with
    /// noise), and an invalid border column.
    fn synthetic() -> (Vec<Vec<f32>>, Vec<u8>) {
        let (w, h) = (40usize, 50usize);
        let rng = CounterRng::new(99);
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut cls = Vec::new();
        for cell in 0..w * h {
            let u = rng.block(100, 0, cell as u64, 0);
            let x = CounterRng::unit(u[0]) as f32 * 10.0;
            let y = CounterRng::unit(u[1]) as f32 * 500.0 + 100.0;
            let noise = CounterRng::unit(u[2]) < 0.1;
            let c = if cell % w == 0 {
                INVALID_CLASS
            } else if noise {
                (u[3] % 3) as u8
            } else if x < 5.0 {
                0
            } else if y < 350.0 {
                1
            } else {
                2
            };
            a.push(x);
            b.push(y);
            cls.push(c);
        }
        (vec![a, b], cls)
    }

    fn run(settings: &AnnSettings) -> TrainedAnn {
        let (drivers, classes) = synthetic();
        let layers: Vec<&[f32]> = drivers.iter().map(|v| v.as_slice()).collect();
        let names = ["x".to_string(), "y".to_string()];
        let class_names = ["a".to_string(), "b".to_string(), "c".to_string()];
        let data = TrainingData {
            drivers: &layers,
            driver_names: &names,
            classes: &classes,
            class_names: &class_names,
            width: 40,
        };
        train(&data, settings, 3).unwrap()
    }

    fn small_settings() -> AnnSettings {
        AnnSettings {
            per_mille: 300.0,
            epochs: 60,
            ..AnnSettings::default()
        }
    }

    #[test]
    fn training_learns_a_separable_pattern() {
        let t = run(&small_settings());
        // 90 % of the labels follow the rule, so a good fit is near 0.9 + 0.1 / 3.
        assert!(t.report.train_accuracy > 0.8, "{:?}", t.report);
        assert!(t.report.holdout_accuracy.unwrap() > 0.8, "{:?}", t.report);
        assert!(
            t.report.train_loss < 1.0986,
            "below ln 3 = chance: {:?}",
            t.report
        );
        assert_eq!(t.report.hidden, 11); // floor(sqrt(2)) + 10
                                         // 1950 valid cells * 300 / 1000 = 585, 195 per class, 39 held out.
        assert_eq!(t.report.train_per_class, vec![156; 3]);
        assert_eq!(t.report.holdout_per_class, vec![39; 3]);
    }

    #[test]
    fn trained_weights_are_bit_identical_with_one_and_two_threads() {
        let settings = small_settings();
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let one = pool(1).install(|| run(&settings));
        let two = pool(2).install(|| run(&settings));
        let bits = |t: &TrainedAnn| {
            t.network
                .params()
                .iter()
                .map(|p| p.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&one), bits(&two));
        assert_eq!(one.report, two.report);
    }

    /// The set a worker receives (its JSON header and its rows) fits to the bits of the
    /// in-process training: JSON carries every double exactly (serde_json's
    /// float_roundtrip), and [`fit`] reads nothing else.
    #[test]
    fn a_set_sent_as_json_and_rows_fits_to_the_bits_of_train() {
        let (drivers, classes) = synthetic();
        let layers: Vec<&[f32]> = drivers.iter().map(|v| v.as_slice()).collect();
        let names = ["x".to_string(), "y".to_string()];
        let class_names = ["a".to_string(), "b".to_string(), "c".to_string()];
        let data = TrainingData {
            drivers: &layers,
            driver_names: &names,
            classes: &classes,
            class_names: &class_names,
            width: 40,
        };
        let settings = small_settings();
        let reference = train(&data, &settings, 3).unwrap();
        let set = prepare(&data, &settings, 3).unwrap();
        // the rows are those of the sample drawn by the rule, normalised by hand
        let sample = draw_sample(&classes, &class_names, settings.sampling, 300.0, 0.2, 3).unwrap();
        let cells: Vec<u64> = sample.train.iter().map(|&c| c as u64).collect();
        assert_eq!(set.train.cells, cells);
        let (lo, hi) = (set.normalisation.min[1], set.normalisation.max[1]);
        let c0 = sample.train[0];
        assert_eq!(set.train.xs[1], (drivers[1][c0] as f64 - lo) / (hi - lo));
        assert_eq!(set.train.ys[0], classes[c0]);
        let mut received: TrainingSet =
            serde_json::from_slice(&serde_json::to_vec(&set).unwrap()).unwrap();
        assert!(received.train.cells.is_empty(), "rows travel apart");
        received.train = set.train.clone();
        received.holdout = set.holdout.clone();
        let settings: AnnSettings =
            serde_json::from_slice(&serde_json::to_vec(&settings).unwrap()).unwrap();
        let remote = fit(&received, &settings, 3).unwrap();
        let bits = |t: &TrainedAnn| {
            t.network
                .params()
                .iter()
                .map(|p| p.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&remote), bits(&reference));
        assert_eq!(remote, reference);
        // and the network itself survives the trip back as JSON
        let back: TrainedAnn =
            serde_json::from_slice(&serde_json::to_vec(&remote).unwrap()).unwrap();
        assert_eq!(bits(&back), bits(&reference));
    }

    #[test]
    fn a_set_whose_rows_do_not_fit_its_names_is_refused_by_name() {
        let set = TrainingSet {
            driver_names: vec!["x".into(), "y".into()],
            class_names: vec!["a".into(), "b".into()],
            normalisation: Normalisation {
                min: vec![0.0; 2],
                max: vec![1.0; 2],
            },
            hidden: 3,
            valid_cells: 1,
            train_per_class: vec![1, 0],
            holdout_per_class: vec![0, 0],
            constant_drivers: vec![],
            train: SampleRows {
                cells: vec![4],
                xs: vec![0.5; 3],
                ys: vec![0],
            },
            holdout: SampleRows::default(),
        };
        let e = fit(&set, &AnnSettings::default(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("training rows") && e.contains("3 values"), "{e}");
        let mut bad_class = set.clone();
        bad_class.train.xs = vec![0.5; 2];
        bad_class.train.ys = vec![7];
        let e = fit(&bad_class, &AnnSettings::default(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("class index 7"), "{e}");
    }

    #[test]
    fn early_stop_keeps_the_best_epoch_and_fixed_epochs_run_them_all() {
        let fixed = run(&AnnSettings {
            early_stop_patience: None,
            epochs: 7,
            ..small_settings()
        });
        assert_eq!((fixed.report.epochs_run, fixed.report.best_epoch), (7, 7));
        let early = run(&AnnSettings {
            early_stop_patience: Some(3),
            epochs: 200,
            ..small_settings()
        });
        let r = &early.report;
        assert!(r.best_epoch <= r.epochs_run);
        assert!(
            r.epochs_run == 200 || r.epochs_run - r.best_epoch == 3,
            "{r:?}"
        );
    }

    #[test]
    fn invalid_settings_name_the_field() {
        for (s, key) in [
            (
                AnnSettings {
                    per_mille: 0.0,
                    ..AnnSettings::default()
                },
                "per_mille",
            ),
            (
                AnnSettings {
                    momentum: 1.0,
                    ..AnnSettings::default()
                },
                "momentum",
            ),
            (
                AnnSettings {
                    batch_size: 0,
                    ..AnnSettings::default()
                },
                "batch_size",
            ),
            (
                AnnSettings {
                    holdout: 0.0,
                    ..AnnSettings::default()
                },
                "early_stop_patience",
            ),
            (
                AnnSettings {
                    hidden: Some(0),
                    ..AnnSettings::default()
                },
                "hidden",
            ),
        ] {
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{e}");
        }
        assert!(AnnSettings::default().validate().is_ok());
    }

    /// The study config documents `[ann]` epochs 100, learning_rate 0.1,
    /// early_stop_patience 15 (config.rs defaults); the library's default must be the
    /// same settings (it was 300 / 0.3 / 30).
    #[test]
    fn the_library_default_is_the_study_config_default() {
        let d = AnnSettings::default();
        assert_eq!((d.epochs, d.learning_rate), (100, 0.1));
        assert_eq!(d.early_stop_patience, Some(15));
        assert_eq!(d, AnnSettings::from(&crate::config::AnnConfig::default()));
    }
}
