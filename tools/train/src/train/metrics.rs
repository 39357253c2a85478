//! Evaluation of a classifier from its logits: top-1 and top-5 accuracy, per-class accuracy, the
//! confusion matrix, the worst confusions, the mean cross-entropy and a Markdown report.
//!
//! The reference metric (`shared/design/xrvlm-method.md` §6) is torchmetrics' micro multiclass
//! accuracy, i.e. [`Evaluation::top1`] over all test images.
//!
//! Logits are accumulated batch by batch with [`EvalAccumulator`] (or all at once with
//! [`Evaluation::from_logits`]), so the full N×C matrix never has to be kept.
//!
//! **Ties are deterministic**, by the workspace's one ranking rule ([`xrvlm_runtime::ranking`]):
//! a larger logit ranks first, equal ones by the lower index. The prediction is therefore the
//! *lowest* index among the maxima, and an all-equal row counts as correct top-k only for the
//! labels `0..k`. A NaN logit ranks as −∞.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use xrvlm_runtime::ranking::{argmax, rank_of};

/// Largest `k` of the top-k accuracy ([`Evaluation::top5`] uses `min(5, C)`).
pub const TOP_K: usize = 5;

/// Errors raised while accumulating an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// No class names were given.
    #[error("train/metrics.rs: an evaluation needs at least one class")]
    NoClasses,
    /// The logits slice is not `labels.len() × num_classes` long.
    #[error(
        "train/metrics.rs: {len} logits for {labels} labels, expected labels × {classes} classes"
    )]
    LogitsLength {
        /// Number of logits given.
        len: usize,
        /// Number of labels given.
        labels: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A row of logits does not have one value per class.
    #[error("train/metrics.rs: logits row {row} has {len} values, expected {classes} classes")]
    RowLength {
        /// Index of the row in the batch.
        row: usize,
        /// Its length.
        len: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A label is not a valid class index.
    #[error("train/metrics.rs: label {label} at row {row} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// The label.
        label: usize,
        /// Index of the row in the batch.
        row: usize,
        /// Number of classes.
        classes: usize,
    },
    /// The logits tensor is not a `(batch, classes)` matrix or could not be read.
    #[error("train/metrics.rs: reading the logits tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// [`EvalAccumulator::finish`] was called before any sample was added.
    #[error("train/metrics.rs: no samples were evaluated")]
    Empty,
}

/// Accuracy of one true class.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassAccuracy {
    /// Class name.
    pub class: String,
    /// Samples of this class predicted correctly (top-1).
    pub correct: usize,
    /// Samples of this class.
    pub total: usize,
    /// `correct / total`, or 0 when the class has no sample.
    pub accuracy: f64,
}

/// One off-diagonal cell of the confusion matrix, as returned by
/// [`Evaluation::worst_confusions`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConfusedPair {
    /// Index of the true class.
    pub true_index: usize,
    /// Name of the true class.
    pub true_class: String,
    /// Index of the predicted (wrong) class.
    pub predicted_index: usize,
    /// Name of the predicted class.
    pub predicted_class: String,
    /// Samples of the true class predicted as this class.
    pub count: u32,
    /// `count` over the number of samples of the true class.
    pub share_of_class: f64,
}

/// The result of evaluating a classifier on a labelled set.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    /// Top-1 accuracy in [0, 1] over all samples (micro average).
    pub top1: f64,
    /// Top-`top_k` accuracy in [0, 1], where `top_k = min(5, classes)`.
    pub top5: f64,
    /// The `k` used for [`Evaluation::top5`].
    pub top_k: usize,
    /// Mean of the per-class accuracies over the classes that have samples (macro average).
    pub mean_class_accuracy: f64,
    /// Top-1 accuracy of each class, in class-index order.
    pub per_class: Vec<ClassAccuracy>,
    /// Confusion counts: `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u32>>,
    /// Mean cross-entropy of the logits (natural log, computed in f64). Always set by
    /// [`EvalAccumulator`]; `None` only for an evaluation built without logits.
    pub mean_loss: Option<f64>,
    /// Number of samples evaluated.
    pub count: usize,
}

/// Cross-entropy `logsumexp(row) − row[label]` of one row, computed in f64.
pub fn cross_entropy(row: &[f32], label: usize) -> f64 {
    let max = row
        .iter()
        .map(|&x| f64::from(x))
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        // All −∞ (or +∞ present): fall back to the direct formula, which yields NaN or ∞.
        let sum: f64 = row.iter().map(|&x| f64::from(x).exp()).sum();
        return sum.ln() - f64::from(row[label]);
    }
    let sum: f64 = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    max + sum.ln() - f64::from(row[label])
}

/// Mean cross-entropy over a row-major `labels.len() × num_classes` logits slice.
pub fn mean_cross_entropy(
    logits: &[f32],
    num_classes: usize,
    labels: &[usize],
) -> Result<f64, MetricsError> {
    check_batch(logits, num_classes, labels)?;
    if labels.is_empty() {
        return Err(MetricsError::Empty);
    }
    let total: f64 = logits
        .chunks_exact(num_classes)
        .zip(labels)
        .map(|(row, &y)| cross_entropy(row, y))
        .sum();
    Ok(total / labels.len() as f64)
}

fn check_batch(logits: &[f32], classes: usize, labels: &[usize]) -> Result<(), MetricsError> {
    if classes == 0 {
        return Err(MetricsError::NoClasses);
    }
    if logits.len() != labels.len() * classes {
        return Err(MetricsError::LogitsLength {
            len: logits.len(),
            labels: labels.len(),
            classes,
        });
    }
    if let Some((row, &label)) = labels.iter().enumerate().find(|(_, &y)| y >= classes) {
        return Err(MetricsError::LabelOutOfRange {
            label,
            row,
            classes,
        });
    }
    Ok(())
}

/// Accumulates logits and labels batch by batch into an [`Evaluation`].
#[derive(Clone, Debug)]
pub struct EvalAccumulator {
    class_names: Vec<String>,
    confusion: Vec<Vec<u32>>,
    top_k: usize,
    top_k_correct: usize,
    loss_sum: f64,
    count: usize,
}

impl EvalAccumulator {
    /// An empty accumulator over the given classes (index `i` is named `class_names[i]`).
    pub fn new(class_names: Vec<String>) -> Result<Self, MetricsError> {
        let classes = class_names.len();
        if classes == 0 {
            return Err(MetricsError::NoClasses);
        }
        Ok(Self {
            class_names,
            confusion: vec![vec![0; classes]; classes],
            top_k: TOP_K.min(classes),
            top_k_correct: 0,
            loss_sum: 0.0,
            count: 0,
        })
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Number of samples added so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Adds a batch of row-major `labels.len() × classes` logits. The batch is checked whole
    /// before anything is counted.
    pub fn add_batch(&mut self, logits: &[f32], labels: &[usize]) -> Result<(), MetricsError> {
        let classes = self.num_classes();
        check_batch(logits, classes, labels)?;
        for (row, &label) in logits.chunks_exact(classes).zip(labels) {
            let predicted = argmax(row);
            self.confusion[label][predicted] += 1;
            if rank_of(row, label) < self.top_k {
                self.top_k_correct += 1;
            }
            self.loss_sum += cross_entropy(row, label);
            self.count += 1;
        }
        Ok(())
    }

    /// Adds a batch given as one `Vec` of logits per sample.
    pub fn add_rows(&mut self, rows: &[Vec<f32>], labels: &[usize]) -> Result<(), MetricsError> {
        let classes = self.num_classes();
        if let Some((row, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != classes) {
            return Err(MetricsError::RowLength {
                row,
                len: r.len(),
                classes,
            });
        }
        self.add_batch(&rows.concat(), labels)
    }

    /// Adds a `(batch, classes)` logits tensor of any float dtype, on any device.
    pub fn add_tensor(
        &mut self,
        logits: &candle_core::Tensor,
        labels: &[usize],
    ) -> Result<(), MetricsError> {
        let (_, classes) = logits.dims2()?;
        if classes != self.num_classes() {
            return Err(MetricsError::RowLength {
                row: 0,
                len: classes,
                classes: self.num_classes(),
            });
        }
        let flat = logits
            .to_dtype(candle_core::DType::F32)?
            .to_device(&candle_core::Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        self.add_batch(&flat, labels)
    }

    /// The evaluation of everything added. Fails if nothing was added.
    pub fn finish(self) -> Result<Evaluation, MetricsError> {
        if self.count == 0 {
            return Err(MetricsError::Empty);
        }
        let n = self.count as f64;
        let per_class: Vec<ClassAccuracy> = self
            .class_names
            .into_iter()
            .zip(&self.confusion)
            .enumerate()
            .map(|(i, (class, row))| {
                let total = row.iter().map(|&c| c as usize).sum::<usize>();
                let correct = row[i] as usize;
                let accuracy = if total == 0 {
                    0.0
                } else {
                    correct as f64 / total as f64
                };
                ClassAccuracy {
                    class,
                    correct,
                    total,
                    accuracy,
                }
            })
            .collect();
        let correct: usize = per_class.iter().map(|c| c.correct).sum();
        let present: Vec<f64> = per_class
            .iter()
            .filter(|c| c.total > 0)
            .map(|c| c.accuracy)
            .collect();
        Ok(Evaluation {
            top1: correct as f64 / n,
            top5: self.top_k_correct as f64 / n,
            top_k: self.top_k,
            mean_class_accuracy: present.iter().sum::<f64>() / present.len() as f64,
            per_class,
            confusion: self.confusion,
            mean_loss: Some(self.loss_sum / n),
            count: self.count,
        })
    }
}

impl Evaluation {
    /// Evaluates row-major `labels.len() × class_names.len()` logits in one go.
    pub fn from_logits(
        logits: &[f32],
        labels: &[usize],
        class_names: Vec<String>,
    ) -> Result<Self, MetricsError> {
        let mut acc = EvalAccumulator::new(class_names)?;
        acc.add_batch(logits, labels)?;
        acc.finish()
    }

    /// Evaluates logits given as one `Vec` per sample.
    pub fn from_rows(
        rows: &[Vec<f32>],
        labels: &[usize],
        class_names: Vec<String>,
    ) -> Result<Self, MetricsError> {
        let mut acc = EvalAccumulator::new(class_names)?;
        acc.add_rows(rows, labels)?;
        acc.finish()
    }

    /// The `k` largest off-diagonal cells of the confusion matrix (zero cells excluded), by
    /// count, then by true index, then by predicted index.
    pub fn worst_confusions(&self, k: usize) -> Vec<ConfusedPair> {
        let mut cells: Vec<(usize, usize, u32)> = self
            .confusion
            .iter()
            .enumerate()
            .flat_map(|(t, row)| {
                row.iter()
                    .enumerate()
                    .filter(move |&(p, &c)| p != t && c > 0)
                    .map(move |(p, &c)| (t, p, c))
            })
            .collect();
        cells.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        cells
            .into_iter()
            .take(k)
            .map(|(t, p, count)| {
                let total = self.per_class[t].total.max(1) as f64;
                ConfusedPair {
                    true_index: t,
                    true_class: self.per_class[t].class.clone(),
                    predicted_index: p,
                    predicted_class: self.per_class[p].class.clone(),
                    count,
                    share_of_class: f64::from(count) / total,
                }
            })
            .collect()
    }

    /// A short Markdown report: headline numbers, the per-class table and the ten worst
    /// confusions.
    pub fn to_markdown(&self) -> String {
        const WORST: usize = 10;
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = writeln!(s, "## Evaluation\n");
        let _ = writeln!(s, "- Samples: {}", self.count);
        let _ = writeln!(s, "- Top-1: {:.2} %", 100.0 * self.top1);
        let _ = writeln!(s, "- Top-{}: {:.2} %", self.top_k, 100.0 * self.top5);
        let _ = writeln!(
            s,
            "- Mean class accuracy: {:.2} %",
            100.0 * self.mean_class_accuracy
        );
        if let Some(loss) = self.mean_loss {
            let _ = writeln!(s, "- Mean cross-entropy: {loss:.4}");
        }
        let _ = writeln!(s, "\n### Per-class accuracy\n");
        let _ = writeln!(s, "| # | Class | Correct | Total | Accuracy |");
        let _ = writeln!(s, "|---:|---|---:|---:|---:|");
        for (i, c) in self.per_class.iter().enumerate() {
            let acc = if c.total == 0 {
                "–".to_string()
            } else {
                format!("{:.2} %", 100.0 * c.accuracy)
            };
            let _ = writeln!(
                s,
                "| {i} | {} | {} | {} | {acc} |",
                escape(&c.class),
                c.correct,
                c.total
            );
        }
        let worst = self.worst_confusions(WORST);
        let _ = writeln!(s, "\n### Most confused pairs\n");
        if worst.is_empty() {
            let _ = writeln!(s, "No confusions.");
        } else {
            let _ = writeln!(s, "| True class | Predicted as | Count | Share of class |");
            let _ = writeln!(s, "|---|---|---:|---:|");
            for w in worst {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.2} % |",
                    escape(&w.true_class),
                    escape(&w.predicted_class),
                    w.count,
                    100.0 * w.share_of_class
                );
            }
        }
        s
    }
}

/// Escapes the characters that would break a Markdown table cell.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn hand_made_logits_give_expected_accuracies() -> Result<(), MetricsError> {
        // 3 classes (top-k = 3, so top5 is 1 for every sample).
        let logits = [
            3.0, 1.0, 0.0, // true 0, predicted 0
            0.0, 2.0, 1.0, // true 1, predicted 1
            0.0, 2.0, 1.0, // true 2, predicted 1
            5.0, 0.0, 4.0, // true 2, predicted 0
        ];
        let labels = [0, 1, 2, 2];
        let eval = Evaluation::from_logits(&logits, &labels, names(3))?;
        assert_eq!(eval.count, 4);
        assert_eq!(eval.top_k, 3);
        assert!((eval.top1 - 0.5).abs() < 1e-12);
        assert!((eval.top5 - 1.0).abs() < 1e-12);
        assert_eq!(
            eval.confusion,
            vec![vec![1, 0, 0], vec![0, 1, 0], vec![1, 1, 0]]
        );
        assert_eq!(eval.per_class[2].correct, 0);
        assert_eq!(eval.per_class[2].total, 2);
        assert!((eval.mean_class_accuracy - 2.0 / 3.0).abs() < 1e-12);
        let ce = |row: [f64; 3], y: usize| row.iter().map(|x| x.exp()).sum::<f64>().ln() - row[y];
        let want = (ce([3.0, 1.0, 0.0], 0)
            + ce([0.0, 2.0, 1.0], 1)
            + ce([0.0, 2.0, 1.0], 2)
            + ce([5.0, 0.0, 4.0], 2))
            / 4.0;
        assert!((eval.mean_loss.unwrap_or(f64::NAN) - want).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn top5_counts_rank_below_five_with_more_classes() -> Result<(), MetricsError> {
        // 7 classes; the label sits at rank 4 (in top-5) then at rank 5 (out).
        let row_in = vec![7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0];
        let eval = Evaluation::from_rows(&[row_in.clone(), row_in], &[4, 5], names(7))?;
        assert_eq!(eval.top_k, 5);
        assert!((eval.top5 - 0.5).abs() < 1e-12);
        assert_eq!(eval.top1, 0.0);
        Ok(())
    }

    #[test]
    fn ties_are_broken_by_lowest_index() -> Result<(), MetricsError> {
        let row = [1.0f32; 7];
        assert_eq!(argmax(&row), 0);
        assert_eq!(rank_of(&row, 4), 4);
        assert_eq!(rank_of(&row, 5), 5);
        let nan_row = [f32::NAN, 0.5, 0.5];
        assert_eq!(argmax(&nan_row), 1);
        assert_eq!(rank_of(&nan_row, 0), 2);
        let eval = Evaluation::from_logits(&row, &[0], names(7))?;
        assert_eq!(eval.top1, 1.0);
        let eval = Evaluation::from_logits(&row, &[6], names(7))?;
        assert_eq!((eval.top1, eval.top5), (0.0, 0.0));
        Ok(())
    }

    #[test]
    fn cross_entropy_is_stable_for_large_logits() {
        let ce = cross_entropy(&[1000.0, 0.0], 0);
        assert!(ce.abs() < 1e-12, "{ce}");
        let ce = cross_entropy(&[0.0, 0.0], 1);
        assert!((ce - 2f64.ln()).abs() < 1e-12, "{ce}");
    }

    #[test]
    fn worst_confusions_are_sorted_and_skip_the_diagonal() -> Result<(), MetricsError> {
        let rows = vec![
            vec![0.0, 1.0, 0.0], // 0 -> 1
            vec![0.0, 1.0, 0.0], // 0 -> 1
            vec![0.0, 0.0, 1.0], // 0 -> 2
            vec![1.0, 0.0, 0.0], // 2 -> 0
            vec![0.0, 0.0, 1.0], // 2 -> 2
        ];
        let eval = Evaluation::from_rows(&rows, &[0, 0, 0, 2, 2], names(3))?;
        let worst = eval.worst_confusions(10);
        let cells: Vec<_> = worst
            .iter()
            .map(|w| (w.true_index, w.predicted_index, w.count))
            .collect();
        assert_eq!(cells, vec![(0, 1, 2), (0, 2, 1), (2, 0, 1)]);
        assert!((worst[0].share_of_class - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(eval.worst_confusions(1).len(), 1);
        // Class 1 has no samples: it is left out of the macro average.
        assert!((eval.mean_class_accuracy - 0.25).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn markdown_report_has_headline_table_and_confusions() -> Result<(), MetricsError> {
        let class_names = vec!["Black|footed Albatross".to_string(), "Crow".to_string()];
        let eval = Evaluation::from_rows(&[vec![0.0, 1.0], vec![0.0, 1.0]], &[0, 1], class_names)?;
        let md = eval.to_markdown();
        assert!(md.contains("- Top-1: 50.00 %"), "{md}");
        assert!(md.contains("- Top-2: 100.00 %"), "{md}");
        assert!(
            md.contains("| 0 | Black\\|footed Albatross | 0 | 1 | 0.00 % |"),
            "{md}"
        );
        assert!(
            md.contains("| Black\\|footed Albatross | Crow | 1 | 100.00 % |"),
            "{md}"
        );
        Ok(())
    }

    #[test]
    fn bad_batches_are_rejected_with_clear_errors() -> Result<(), MetricsError> {
        let mut acc = EvalAccumulator::new(names(3))?;
        let err = acc.add_batch(&[0.0; 5], &[0, 1]).unwrap_err();
        assert!(err.to_string().contains("metrics.rs"), "{err}");
        assert!(matches!(err, MetricsError::LogitsLength { len: 5, .. }));
        let err = acc.add_batch(&[0.0; 6], &[0, 3]).unwrap_err();
        assert!(matches!(
            err,
            MetricsError::LabelOutOfRange {
                label: 3,
                row: 1,
                ..
            }
        ));
        assert_eq!(acc.count(), 0, "a rejected batch counts nothing");
        assert!(matches!(acc.finish(), Err(MetricsError::Empty)));
        assert!(matches!(
            EvalAccumulator::new(vec![]),
            Err(MetricsError::NoClasses)
        ));
        Ok(())
    }

    #[test]
    fn tensor_batches_match_slice_batches() -> Result<(), MetricsError> {
        let data = [0.1f32, 0.9, 0.3, 0.8, 0.2, 0.0];
        let t = candle_core::Tensor::from_slice(&data, (2, 3), &candle_core::Device::Cpu)?;
        let mut acc = EvalAccumulator::new(names(3))?;
        acc.add_tensor(&t, &[1, 0])?;
        let from_tensor = acc.finish()?;
        assert_eq!(
            from_tensor,
            Evaluation::from_logits(&data, &[1, 0], names(3))?
        );
        Ok(())
    }
}
