//! Training curves as one PNG, drawn with plotters' bitmap backend from the metrics log
//! ([`super::metrics_log::Record`]s): three panels side by side,
//!
//! 1. loss per epoch (training, and evaluation when present),
//! 2. evaluation top-1 and top-5 accuracy (%) per epoch, with the best top-1 in the legend,
//! 3. learning rate per epoch.
//!
//! When an epoch has several records of a kind (e.g. training logged every N steps), the panel
//! shows their mean. Non-finite values (a diverged loss) are left out. A panel without data says
//! so instead of failing, so the curves can be drawn after the first epoch.
//!
//! Text needs a font and plotters' `ab_glyph` backend loads none from the system, so DejaVu Sans
//! (`tools/train/assets/DejaVuSans.ttf`, licence next to it) is embedded and registered once as
//! `sans-serif`. The image is encoded in memory and written atomically (temporary file, rename).

use std::collections::BTreeMap;
use std::error::Error;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::metrics_log::{Record, RecordKind};

/// Size in pixels of the curves image (three panels of 600 × 500).
pub const CURVES_SIZE: (u32, u32) = (1800, 500);

/// Series longer than this are drawn as plain lines, without point markers.
const MAX_MARKERS: usize = 40;

/// DejaVu Sans, embedded so that plotting works on machines without fonts.
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Font family name the embedded font is registered under (plotters' default family).
const FONT: &str = "sans-serif";

// Colours of matplotlib's "tab10" palette, easy to tell apart.
const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const PURPLE: RGBColor = RGBColor(148, 103, 189);

/// Errors of [`write_curves`].
#[derive(Debug, thiserror::Error)]
pub enum CurvesError {
    /// The embedded font was rejected by plotters (a corrupt asset).
    #[error("train/curves.rs: the embedded font assets/DejaVuSans.ttf could not be registered")]
    Font,
    /// plotters failed while drawing.
    #[error("train/curves.rs: drawing the curves for {}: {message}", path.display())]
    Draw {
        /// The image being drawn.
        path: PathBuf,
        /// plotters' error message.
        message: String,
    },
    /// PNG encoding failed.
    #[error("train/curves.rs: encoding the PNG for {}: {source}", path.display())]
    Encode {
        /// The image being written.
        path: PathBuf,
        /// The encoder error.
        source: image::ImageError,
    },
    /// Writing the file failed.
    #[error("train/curves.rs: cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

type DrawResult = Result<(), Box<dyn Error + Send + Sync>>;

/// Registers the embedded font with plotters, once per process.
fn ensure_font() -> Result<(), CurvesError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(CurvesError::Font)
    }
}

/// Draws the training curves of `records` into a PNG at `path` ([`CURVES_SIZE`]), with `title`
/// above the panels. Parent directories are created. Works with no evaluation records, a single
/// epoch, or no records at all.
pub fn write_curves(records: &[Record], path: &Path, title: &str) -> Result<(), CurvesError> {
    ensure_font()?;
    let (w, h) = CURVES_SIZE;
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    draw(records, &mut pixels, title).map_err(|e| CurvesError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let encode_err = |source| CurvesError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let image = image::RgbImage::from_raw(w, h, pixels).ok_or_else(|| {
        encode_err(image::ImageError::Parameter(
            image::error::ParameterError::from_kind(
                image::error::ParameterErrorKind::DimensionMismatch,
            ),
        ))
    })?;
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(encode_err)?;
    write_atomically(path, &png)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CurvesError> {
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| CurvesError::Io { op, path, source }
    };
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename temporary file onto", path))
}

/// Mean per epoch of `value` over the records of `kind` (finite values only), by epoch.
fn per_epoch(
    records: &[Record],
    kind: RecordKind,
    value: impl Fn(&Record) -> Option<f64>,
) -> Vec<(f64, f64)> {
    let mut sums: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
    for r in records.iter().filter(|r| r.kind == kind) {
        if let Some(v) = value(r).filter(|v| v.is_finite()) {
            let entry = sums.entry(r.epoch).or_default();
            entry.0 += v;
            entry.1 += 1;
        }
    }
    sums.into_iter()
        .map(|(e, (sum, n))| (e as f64, sum / n as f64))
        .collect()
}

/// One named line of a panel.
struct Line {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// How a panel's y axis is laid out.
struct Panel<'a> {
    caption: &'a str,
    y_desc: &'a str,
    empty_note: &'a str,
    lines: Vec<Line>,
    /// Lowest y shown, before data (e.g. 0 for a loss).
    y_floor: Option<f64>,
    /// Highest y shown, whatever the data (100 for an accuracy).
    y_ceiling: Option<f64>,
    y_format: fn(&f64) -> String,
    /// Where the legend goes (away from where the curves usually are).
    legend: SeriesLabelPosition,
}

fn draw(records: &[Record], pixels: &mut [u8], title: &str) -> DrawResult {
    let root = BitMapBackend::with_buffer(pixels, CURVES_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(title, (FONT, 26))?;
    let areas = body.split_evenly((1, 3));

    let train_loss = per_epoch(records, RecordKind::Train, |r| Some(r.loss));
    let eval_loss = per_epoch(records, RecordKind::Eval, |r| Some(r.loss));
    let pct = |v: Option<f64>| v.map(|x| 100.0 * x);
    let top1 = per_epoch(records, RecordKind::Eval, |r| pct(r.top1));
    let top5 = per_epoch(records, RecordKind::Eval, |r| pct(r.top5));
    let mut lr = per_epoch(records, RecordKind::Train, |r| Some(r.lr));
    if lr.is_empty() {
        lr = per_epoch(records, RecordKind::Eval, |r| Some(r.lr));
    }
    let best_top1 = top1
        .iter()
        .copied()
        .fold(None, |best: Option<(f64, f64)>, p| match best {
            Some(b) if b.1 >= p.1 => Some(b),
            _ => Some(p),
        });
    let top1_label = match best_top1 {
        Some((e, v)) => format!("top-1 (best {v:.2} % at epoch {e:.0})"),
        None => "top-1".to_string(),
    };

    let mut x_all: Vec<f64> = [&train_loss, &eval_loss, &top1, &lr]
        .iter()
        .flat_map(|s| s.iter().map(|p| p.0))
        .collect();
    x_all.sort_by(f64::total_cmp);
    let x_range = match (x_all.first(), x_all.last()) {
        // Pad by 2 % so that the end markers are not clipped by the axes.
        (Some(&lo), Some(&hi)) if hi > lo => {
            let pad = 0.02 * (hi - lo);
            lo - pad..hi + pad
        }
        // A single epoch sits in the middle.
        (Some(&e), _) => e - 1.0..e + 1.0,
        _ => 0.0..1.0,
    };

    let line = |label: &str, color, points| Line {
        label: label.to_string(),
        color,
        points,
    };
    let panels = [
        Panel {
            caption: "Loss",
            y_desc: "cross-entropy",
            empty_note: "no loss recorded yet",
            lines: vec![
                line("train", BLUE, train_loss),
                line("eval", ORANGE, eval_loss),
            ],
            y_floor: Some(0.0),
            y_ceiling: None,
            y_format: |v| format!("{v:.2}"),
            legend: SeriesLabelPosition::UpperRight,
        },
        Panel {
            caption: "Evaluation accuracy",
            y_desc: "accuracy (%)",
            empty_note: "no evaluation yet",
            lines: vec![line(&top1_label, BLUE, top1), line("top-5", GREEN, top5)],
            y_floor: None,
            y_ceiling: Some(100.0),
            y_format: |v| format!("{v:.0}"),
            // Accuracy curves rise to the upper right; keep the legend out of their way.
            legend: SeriesLabelPosition::LowerRight,
        },
        Panel {
            caption: "Learning rate",
            y_desc: "lr",
            empty_note: "no training epoch yet",
            lines: vec![line("lr", PURPLE, lr)],
            y_floor: Some(0.0),
            y_ceiling: None,
            y_format: |v| format!("{v:.1e}"),
            legend: SeriesLabelPosition::UpperRight,
        },
    ];
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel, x_range.clone())?;
    }
    root.present()?;
    Ok(())
}

/// The y range of a panel: the data padded by 5 %, bounded by the panel's floor and ceiling.
fn y_range(panel: &Panel) -> std::ops::Range<f64> {
    let values = panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1));
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.5 * hi.abs().max(1e-3)
    };
    lo -= pad;
    hi += pad;
    if let Some(floor) = panel.y_floor {
        lo = floor;
    }
    if let Some(ceiling) = panel.y_ceiling {
        // A percentage: from a round number below the data (or 0) up to the ceiling.
        hi = ceiling;
        lo = if lo.is_finite() && lo > 0.0 {
            (lo / 10.0).floor() * 10.0
        } else {
            0.0
        };
        lo = lo.min(hi - 10.0);
    }
    lo..hi
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    panel: Panel,
    x_range: std::ops::Range<f64>,
) -> DrawResult {
    let y = y_range(&panel);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, (FONT, 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.clone(), y.clone())?;
    let x_format = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 && *x > -0.5 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.y_desc)
        .x_labels(10)
        .y_labels(8)
        .x_label_formatter(&x_format)
        .y_label_formatter(&panel.y_format)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;

    let mut any = false;
    for line in panel.lines.into_iter().filter(|l| !l.points.is_empty()) {
        any = true;
        let color = line.color;
        chart
            .draw_series(LineSeries::new(line.points.clone(), color.stroke_width(2)))?
            .label(line.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        // Markers show single points and short runs; on long runs they would only clutter.
        if line.points.len() <= MAX_MARKERS {
            chart.draw_series(
                line.points
                    .iter()
                    .map(|&p| Circle::new(p, 3, color.filled())),
            )?;
        }
    }
    if any {
        chart
            .configure_series_labels()
            .position(panel.legend)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
    } else {
        let centre = ((x_range.start + x_range.end) / 2.0, (y.start + y.end) / 2.0);
        let style = TextStyle::from((FONT, 18).into_font())
            .color(&RGBColor(120, 120, 120))
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart.draw_series(std::iter::once(Text::new(
            panel.empty_note.to_string(),
            centre,
            style,
        )))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::metrics_log::Record;

    fn sample_records(epochs: usize, with_eval: bool) -> Vec<Record> {
        let schedule = crate::train::schedule::Schedule::linear_warmup_cosine(epochs, 1);
        let mut records = Vec::new();
        for e in 0..epochs {
            let lr = schedule.lr(2e-3, e);
            let loss = 5.0 * (-(e as f64) / 8.0).exp() + 0.3;
            records.push(Record::train(e, 10 * (e + 1), lr, loss, 30.0));
            if with_eval {
                records.push(Record {
                    kind: RecordKind::Eval,
                    epoch: e,
                    step: 10 * (e + 1),
                    lr,
                    loss: loss + 0.4,
                    top1: Some(0.8 * (1.0 - (-(e as f64) / 6.0).exp())),
                    top5: Some(0.95 * (1.0 - (-(e as f64) / 4.0).exp())),
                    seconds: 5.0,
                });
            }
        }
        records
    }

    /// Decodes the PNG and checks its size and that it has both ink and background.
    fn check_png(path: &Path) -> anyhow::Result<()> {
        let img = image::open(path)?.to_rgb8();
        assert_eq!(img.dimensions(), CURVES_SIZE);
        let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        let dark = img
            .pixels()
            .filter(|p| p.0.iter().all(|&c| c < 100))
            .count();
        let total = img.pixels().count();
        assert!(white > total / 2, "mostly background: {white}/{total}");
        assert!(dark > 1000, "text and axes are drawn: {dark} dark pixels");
        Ok(())
    }

    #[test]
    fn writes_a_decodable_non_blank_png() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("plots/curves.png");
        write_curves(&sample_records(30, true), &path, "CUB 16-shot ViT-B/16")?;
        check_png(&path)?;
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap_or(dir.path()))?.collect::<Result<_, _>>()?;
        assert_eq!(names.len(), 1, "no temporary file left behind");
        Ok(())
    }

    #[test]
    fn works_without_eval_with_one_epoch_and_with_nothing() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let cases = [
            ("no_eval.png", sample_records(5, false)),
            ("one_epoch.png", sample_records(1, true)),
            ("empty.png", Vec::new()),
        ];
        for (name, records) in cases {
            let path = dir.path().join(name);
            write_curves(&records, &path, name)?;
            check_png(&path)?;
        }
        Ok(())
    }

    #[test]
    fn per_epoch_averages_and_skips_non_finite() {
        let records = vec![
            Record::train(0, 1, 1e-3, 2.0, 1.0),
            Record::train(0, 2, 1e-3, 4.0, 1.0),
            Record::train(1, 3, 1e-3, f64::NAN, 1.0),
            Record::train(2, 4, 1e-3, 1.0, 1.0),
        ];
        let loss = per_epoch(&records, RecordKind::Train, |r| Some(r.loss));
        assert_eq!(loss, vec![(0.0, 3.0), (2.0, 1.0)]);
        assert!(per_epoch(&records, RecordKind::Eval, |r| r.top1).is_empty());
    }
}
