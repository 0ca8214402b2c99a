//! Plots drawn with plotters, each rendered to SVG (text) and PNG (file) from one drawing
//! routine. Text uses the DejaVu Sans font embedded in the binary, so no system font is needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The font is compiled in and valid; failure would only mean a corrupt build.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A series of points to scatter.
pub struct Layer<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Marker radius in pixels.
    pub size: u32,
    /// Join the points with a line (in the given order).
    pub line: bool,
}

/// What to draw.
pub enum Figure<'a> {
    /// One scatter plot with several layers.
    Scatter {
        /// Title.
        title: String,
        /// Axis labels.
        labels: (String, String),
        /// Layers, drawn in order.
        layers: Vec<Layer<'a>>,
        /// Legend in the lower right corner (for rising curves) instead of the upper right.
        legend_low: bool,
    },
    /// A scatter matrix: `names.len()` axes, each layer holding full vectors.
    Matrix {
        /// Title.
        title: String,
        /// Axis names.
        names: Vec<String>,
        /// (label, colour, vectors, marker size) per layer.
        layers: Vec<(&'a str, RGBColor, Vec<Vec<f64>>, u32)>,
    },
    /// A Gantt chart: bars on rows, coloured by activity (colours cycle through
    /// [`PALETTE`]), each row split in lanes so that overlapping activities stay visible.
    Gantt(&'a crate::model::Timeline),
    /// Parallel coordinates over normalised axes.
    Parallel {
        /// Title.
        title: String,
        /// Axis names.
        names: Vec<String>,
        /// (colour, opacity, vectors) per layer.
        layers: Vec<(RGBColor, f64, Vec<Vec<f64>>)>,
    },
}

type DrawResult<E> = Result<(), DrawingAreaErrorKind<E>>;

fn range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.04 * (hi - lo)
    } else {
        0.5f64.max(hi.abs() * 0.1)
    };
    (lo - pad, hi + pad)
}

fn scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    labels: (&str, &str),
    layers: &[Layer],
    legend: Option<SeriesLabelPosition>,
    font: u32,
) -> DrawResult<DB::ErrorType> {
    let xr = range(layers.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    let yr = range(layers.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", font + 4))
        .margin(8)
        .x_label_area_size(font * 3)
        .y_label_area_size(font * 5)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)?;
    chart
        .configure_mesh()
        .x_desc(labels.0)
        .y_desc(labels.1)
        .label_style(("sans-serif", font))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for l in layers {
        let color = l.color;
        if l.line && l.points.len() > 1 {
            chart.draw_series(LineSeries::new(
                l.points.iter().copied(),
                color.stroke_width(2),
            ))?;
        }
        let s = l.size;
        let series =
            chart.draw_series(l.points.iter().map(|&p| Circle::new(p, s, color.filled())))?;
        if legend.is_some() {
            series
                .label(l.label)
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
    }
    if let Some(pos) = legend {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", font))
            .position(pos)
            .draw()?;
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    fig: &Figure,
) -> DrawResult<DB::ErrorType> {
    root.fill(&WHITE)?;
    match fig {
        Figure::Scatter {
            title,
            labels,
            layers,
            legend_low,
        } => {
            let pos = if *legend_low {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            };
            scatter(&root, title, (&labels.0, &labels.1), layers, Some(pos), 14)?
        }
        Figure::Matrix {
            title,
            names,
            layers,
        } => {
            let m = names.len();
            let (top, body) = root.split_vertically(36);
            top.titled(title, ("sans-serif", 20))?;
            let cells = body.split_evenly((m, m));
            for (c, cell) in cells.iter().enumerate() {
                let (r, k) = (c / m, c % m);
                if r == k {
                    cell.draw_text(
                        &names[r],
                        &("sans-serif", 16).into_text_style(cell),
                        (20, 40),
                    )?;
                    continue;
                }
                let ls: Vec<Layer> = layers
                    .iter()
                    .map(|(label, color, vs, size)| Layer {
                        label,
                        points: vs.iter().map(|v| (v[k], v[r])).collect(),
                        color: *color,
                        size: *size,
                        line: false,
                    })
                    .collect();
                scatter(cell, "", (&names[k], &names[r]), &ls, None, 11)?;
            }
        }
        Figure::Parallel {
            title,
            names,
            layers,
        } => {
            let m = names.len();
            let ranges: Vec<(f64, f64)> = (0..m)
                .map(|k| range(layers.iter().flat_map(|l| l.2.iter().map(move |v| v[k]))))
                .collect();
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 18))
                .margin(16)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(-0.2f64..(m as f64 - 0.8), 0f64..1f64)?;
            let axis_names = names.clone();
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(m)
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < axis_names.len() {
                        axis_names[i as usize].clone()
                    } else {
                        String::new()
                    }
                })
                .y_desc("normalised value (0 = min, 1 = max)")
                .label_style(("sans-serif", 13))
                .draw()?;
            for k in 0..m {
                chart.draw_series(LineSeries::new(
                    [(k as f64, 0.0), (k as f64, 1.0)],
                    BLACK.mix(0.5),
                ))?;
            }
            for (color, alpha, vs) in layers {
                for v in vs {
                    let pts = (0..m).map(|k| {
                        let (lo, hi) = ranges[k];
                        (k as f64, (v[k] - lo) / (hi - lo))
                    });
                    chart.draw_series(LineSeries::new(pts, color.mix(*alpha)))?;
                }
            }
        }
        Figure::Gantt(t) => gantt(&root, t)?,
    }
    root.present()?;
    Ok(())
}

/// Colours of the Gantt activities, in order.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn gantt<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    t: &crate::model::Timeline,
) -> DrawResult<DB::ErrorType> {
    let rows = t.rows.len().max(1);
    let lanes = t.activities.len().max(1) as f64;
    let end = t.bars.iter().map(|b| b.end).fold(0.0, f64::max).max(1e-9);
    let mut chart = ChartBuilder::on(area)
        .caption(&t.title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..end * 1.02, -0.5f64..rows as f64 - 0.5)?;
    let names = t.rows.clone();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows + 1)
        .y_label_formatter(&|y| {
            // Row r is centred on y = rows − 1 − r.
            let r = rows as f64 - 1.0 - y;
            let i = r.round();
            if (r - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                names[i as usize].clone()
            } else {
                String::new()
            }
        })
        .x_desc(format!("time ({})", t.unit))
        .label_style(("sans-serif", 12))
        .draw()?;
    for (a, name) in t.activities.iter().enumerate() {
        let color = PALETTE[a % PALETTE.len()];
        let lane = |row: usize| {
            let base = (rows - 1 - row) as f64 - 0.45;
            (
                base + 0.9 * a as f64 / lanes,
                base + 0.9 * (a + 1) as f64 / lanes,
            )
        };
        chart
            .draw_series(
                t.bars
                    .iter()
                    .filter(|b| b.activity == a && b.row < rows)
                    .map(|b| {
                        let (y0, y1) = lane(b.row);
                        Rectangle::new([(b.start, y0), (b.end.max(b.start), y1)], color.filled())
                    }),
            )?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 12))
        .draw()?;
    Ok(())
}

/// Renders `fig` as an SVG string and as a PNG file at `png`.
pub fn render(fig: &Figure, size: (u32, u32), png: &Path) -> Result<String, String> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(root, fig).map_err(|e| format!("drawing SVG: {e:?}"))?;
    }
    let root = BitMapBackend::new(png, size).into_drawing_area();
    draw(root, fig).map_err(|e| format!("drawing {}: {e:?}", png.display()))?;
    Ok(svg)
}
