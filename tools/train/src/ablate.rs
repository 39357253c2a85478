//! The ablation of `xrvlm-method.md` §9 as one command: on the same frozen backbone, the same
//! k-shot draws and the same seeds, train and evaluate zero-shot CLIP, CoOp, vision-only, the
//! alignment head and XR-VLM (the part-based heads with M = P for each requested value), and
//! report mean ± std top-1 per row as a Markdown table.
//!
//! With several shot counts (k images per class), every row is run at each k, on the same
//! evaluation set.
//!
//! Every run is an ordinary `train` run directory under `OUT/<row>/seed<N>/` (with shot counts,
//! `OUT/<k>shot/<row>/seed<N>/`); a run whose `eval.json` exists is not repeated, so an
//! interrupted ablation continues where it stopped.

use std::path::Path;

use anyhow::Context;
use candle_core::Device;
use serde::Serialize;

use crate::model::HeadKind;
use crate::train::metrics::Evaluation;
use crate::train::run::RunConfig;
use crate::train::trainer::Trainer;

/// One row of the table: a head and its part / prompt count.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The head.
    pub head: HeadKind,
    /// M = P for part-based heads; `None` where parts do not apply.
    pub parts: Option<usize>,
}

impl Row {
    /// Directory-safe name, e.g. `xrvlm-m4`.
    pub fn slug(&self) -> String {
        let head = serde_json::to_value(self.head)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{:?}", self.head));
        match self.parts {
            Some(m) => format!("{head}-m{m}"),
            None => head,
        }
    }

    /// Label in the table's first column.
    pub fn label(&self) -> String {
        let name = match self.head {
            HeadKind::ZeroShot => "zero-shot CLIP",
            HeadKind::Coop => "CoOp",
            HeadKind::VisionOnly => "vision-only (UnA + MLP)",
            HeadKind::Alignment => "alignment (UnA + MPP, single_sim)",
            HeadKind::Xrvlm => "XR-VLM (UnA + MPP + CRM)",
        };
        match self.parts {
            Some(m) => format!("{name}, M = P = {m}"),
            None => name.to_string(),
        }
    }
}

/// The rows of the ablation for the given part counts, in table order.
pub fn rows(parts: &[usize]) -> Vec<Row> {
    let mut rows = vec![
        Row {
            head: HeadKind::ZeroShot,
            parts: None,
        },
        Row {
            head: HeadKind::Coop,
            parts: None,
        },
    ];
    for head in [HeadKind::VisionOnly, HeadKind::Alignment, HeadKind::Xrvlm] {
        rows.extend(parts.iter().map(|&m| Row {
            head,
            parts: Some(m),
        }));
    }
    rows
}

/// The results of one row over all seeds.
#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    /// The row.
    pub row: Row,
    /// Training images per class (`None`: every training image).
    pub shots: Option<usize>,
    /// Top-1 of each seed, in seed order.
    pub top1: Vec<f64>,
    /// Top-5 of each seed.
    pub top5: Vec<f64>,
}

/// Mean and sample standard deviation (n − 1; 0 for one value).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// A shot count as the table and the progress lines print it (`all` when unset).
fn shots_label(shots: Option<usize>) -> String {
    shots.map_or_else(|| "all".into(), |k| k.to_string())
}

/// The Markdown table of the results.
pub fn to_markdown(results: &[RowResult], seeds: &[u64]) -> String {
    let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
    let mut s = format!(
        "| method | shots | top-1 (mean ± std, %) | top-5 (mean, %) | seeds {} |\n|---|---:|---:|---:|---|\n",
        seeds.join(", ")
    );
    for r in results {
        let shots = shots_label(r.shots);
        let (m, sd) = mean_std(&r.top1);
        let (m5, _) = mean_std(&r.top5);
        let each: Vec<String> = r.top1.iter().map(|t| format!("{:.1}", 100.0 * t)).collect();
        s.push_str(&format!(
            "| {} | {shots} | {:.2} ± {:.2} | {:.2} | {} |\n",
            r.row.label(),
            100.0 * m,
            100.0 * sd,
            100.0 * m5,
            each.join(" / ")
        ));
    }
    s
}

/// What one ablation covers: the part counts (M = P), the seeds and the shot counts (empty:
/// the base run's own `shots` only).
#[derive(Clone, Debug)]
pub struct Grid<'a> {
    /// M = P values of the part-based heads.
    pub parts: &'a [usize],
    /// Seeds; each sets the shot draw, the initialisation and the data order.
    pub seeds: &'a [u64],
    /// Training images per class, one table block each.
    pub shots: &'a [usize],
}

/// Runs (or reuses) every run of the ablation and returns the per-row results, shot count by
/// shot count. `base` carries everything but the head, parts, prompts, seeds and shots.
pub fn run_all(
    base: &RunConfig,
    grid: &Grid<'_>,
    out: &Path,
    device: &Device,
    progress: bool,
) -> anyhow::Result<Vec<RowResult>> {
    let blocks: Vec<(Option<usize>, std::path::PathBuf)> = if grid.shots.is_empty() {
        vec![(base.data.shots, out.to_path_buf())]
    } else {
        grid.shots
            .iter()
            .map(|&k| (Some(k), out.join(format!("{k}shot"))))
            .collect()
    };
    let mut results = Vec::new();
    for (shots, block) in blocks {
        let mut base = base.clone();
        base.data.shots = shots;
        for row in rows(grid.parts) {
            results.push(run_row(&base, &row, grid.seeds, &block, device, progress)?);
        }
    }
    Ok(results)
}

/// One row at the shot count of `base`, over every seed.
fn run_row(
    base: &RunConfig,
    row: &Row,
    seeds: &[u64],
    out: &Path,
    device: &Device,
    progress: bool,
) -> anyhow::Result<RowResult> {
    let mut result = RowResult {
        row: row.clone(),
        shots: base.data.shots,
        top1: Vec::new(),
        top5: Vec::new(),
    };
    let shots = shots_label(base.data.shots);
    for &seed in seeds {
        let dir = out.join(row.slug()).join(format!("seed{seed}"));
        let eval = run_one(base, row, seed, &dir, device, progress)
            .with_context(|| format!("ablation run {}", dir.display()))?;
        eprintln!(
            "{:<45} {shots:>3} shots, seed {seed}: top-1 {:.2} %",
            row.label(),
            100.0 * eval.top1
        );
        result.top1.push(eval.top1);
        result.top5.push(eval.top5);
    }
    Ok(result)
}

fn run_one(
    base: &RunConfig,
    row: &Row,
    seed: u64,
    dir: &Path,
    device: &Device,
    progress: bool,
) -> anyhow::Result<Evaluation> {
    let done = dir.join("eval.json");
    if done.exists() {
        let text = std::fs::read_to_string(&done)?;
        return serde_json::from_str(&text).with_context(|| format!("reading {}", done.display()));
    }
    let mut run = base.clone();
    run.head.kind = row.head;
    let m = row.parts.unwrap_or(1);
    run.head.parts = m;
    run.head.prompts = m;
    run.head.seed = seed;
    run.seed = seed;
    run.data.shot_seed = seed;
    if dir.join(crate::train::trainer::CHECKPOINT_FILE).exists() {
        // An interrupted run: continue it.
        let mut t = Trainer::resume(dir, device, progress)?;
        return finish(&mut t, dir);
    }
    let mut t = Trainer::new(run, dir, device, progress)?;
    finish(&mut t, dir)
}

fn finish(t: &mut Trainer, dir: &Path) -> anyhow::Result<Evaluation> {
    let summary = t.run()?;
    summary
        .eval
        .map(|e| e.evaluation)
        .with_context(|| format!("{}: the data has no evaluation set", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_cover_every_method_and_part_count() {
        let r = rows(&[1, 4]);
        let slugs: Vec<String> = r.iter().map(Row::slug).collect();
        assert_eq!(
            slugs,
            [
                "zero-shot",
                "coop",
                "vision-only-m1",
                "vision-only-m4",
                "alignment-m1",
                "alignment-m4",
                "xrvlm-m1",
                "xrvlm-m4"
            ]
        );
    }

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[0.5, 0.7, 0.9]);
        assert!((m - 0.7).abs() < 1e-12 && (s - 0.2).abs() < 1e-12);
        assert_eq!(mean_std(&[0.3]), (0.3, 0.0));
    }
}
