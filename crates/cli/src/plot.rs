//! PNG line charts (training curves, BLEU vs λ, BLEU vs datastore size, recall@k) drawn
//! with plotters into a pixel buffer and encoded with `png`; the font is DejaVu Sans,
//! compiled in, so plotting needs nothing from the system.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const W: u32 = 900;
const H: u32 = 560;

/// One named line of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Writes a line chart of `series` to `path` (PNG).
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> Result<()> {
    register_font();
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if x.is_finite() && y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if x0 > x1 {
        anyhow::bail!("nothing to plot for {}", path.display());
    }
    if x1 == x0 {
        x1 = x0 + 1.0;
    }
    // An axis that counts (steps, k) gets integer labels only, and no more ticks than
    // integers, so that no label repeats.
    let integer_x = !log_x
        && series
            .iter()
            .flat_map(|s| &s.points)
            .all(|p| !p.0.is_finite() || p.0.fract() == 0.0);
    let x_ticks = if integer_x {
        ((x1 - x0) as usize + 1).clamp(2, 10)
    } else {
        10
    };
    let x_format = |x: &f64| -> String {
        if !integer_x {
            let t = format!("{x:.4}");
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    let pad = ((y1 - y0) * 0.08).max(1e-9);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let mut buf = vec![255u8; (W * H * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut b = ChartBuilder::on(&root);
        b.caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64);
        let colors = [
            &BLUE,
            &RED,
            &GREEN,
            &MAGENTA,
            &CYAN,
            &BLACK,
            &RGBColor(255, 140, 0),
            &RGBColor(128, 0, 128),
            &RGBColor(139, 69, 19),
            &RGBColor(128, 128, 128),
            &RGBColor(0, 128, 128),
            &RGBColor(128, 128, 0),
        ];
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .x_labels(x_ticks)
                    .x_label_formatter(&x_format)
                    .label_style(("sans-serif", 14))
                    .draw()?;
                for (i, s) in series.iter().enumerate() {
                    let c = colors[i % colors.len()];
                    let pts: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(|p| p.0.is_finite() && p.1.is_finite())
                        .collect();
                    chart
                        .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                        .label(s.name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                        });
                    if pts.len() <= 60 {
                        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
                    }
                }
                if series.len() > 1 || !series[0].name.is_empty() {
                    chart
                        .configure_series_labels()
                        .background_style(WHITE.mix(0.85))
                        .border_style(BLACK)
                        .label_font(("sans-serif", 14))
                        .draw()?;
                }
            }};
        }
        if log_x {
            draw!(b.build_cartesian_2d((x0.max(1e-9)..x1).log_scale(), y0..y1)?);
        } else {
            draw!(b.build_cartesian_2d(x0..x1, y0..y1)?);
        }
        root.present()?;
    }
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), W, H);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&buf)?;
    Ok(())
}

#[derive(clap::Args)]
pub struct PlotArgs {
    /// CSV file with a header row (e.g. a run's metrics.csv).
    #[arg(long)]
    pub csv: std::path::PathBuf,
    /// Column for the x axis.
    #[arg(long)]
    pub x: String,
    /// Column(s) for the y axis, one line each.
    #[arg(long, value_delimiter = ',')]
    pub y: Vec<String>,
    /// One line per distinct value of this column (with a single --y).
    #[arg(long)]
    pub group: Option<String>,
    /// Chart title (default: none).
    #[arg(long, default_value = "")]
    pub title: String,
    /// Logarithmic x axis.
    #[arg(long)]
    pub log_x: bool,
    /// Average each y over a moving window of this many rows (noisy training curves).
    #[arg(long, default_value_t = 1)]
    pub smooth: usize,
    /// The PNG to write.
    #[arg(short, long)]
    pub output: std::path::PathBuf,
}

/// `ragl plot`: a line chart from CSV columns; rows with an empty cell are skipped.
pub fn run(a: PlotArgs) -> Result<()> {
    let text =
        std::fs::read_to_string(&a.csv).with_context(|| format!("reading {}", a.csv.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| -> Result<usize> {
        match header.iter().position(|h| h.trim() == name) {
            Some(i) => Ok(i),
            None => crate::bad_input!(
                "{}: no column {name:?} (columns: {})",
                a.csv.display(),
                header.join(", ")
            ),
        }
    };
    let xi = col(&a.x)?;
    let ys: Vec<usize> = a.y.iter().map(|y| col(y)).collect::<Result<_>>()?;
    let gi = a.group.as_deref().map(col).transpose()?;
    let mut series: Vec<Series> = Vec::new();
    for (ln, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let get = |i: usize| cells.get(i).map(|c| c.trim()).filter(|c| !c.is_empty());
        let Some(x) = get(xi) else { continue };
        let Ok(x) = x.parse::<f64>() else {
            crate::bad_input!(
                "{}:{}: x value {x:?} is not a number",
                a.csv.display(),
                ln + 2
            )
        };
        for (k, &yi) in ys.iter().enumerate() {
            let Some(y) = get(yi).and_then(|y| y.parse::<f64>().ok()) else {
                continue;
            };
            let name = match gi {
                Some(g) => format!("{}={}", header[g], get(g).unwrap_or("")),
                None if ys.len() > 1 => a.y[k].clone(),
                None => String::new(),
            };
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((x, y)),
                None => series.push(Series {
                    name,
                    points: vec![(x, y)],
                }),
            }
        }
    }
    if a.smooth > 1 {
        for s in &mut series {
            let w = a.smooth;
            let p = s.points.clone();
            s.points = (0..p.len())
                .map(|i| {
                    let lo = i.saturating_sub(w - 1);
                    let m = p[lo..=i].iter().map(|q| q.1).sum::<f64>() / (i - lo + 1) as f64;
                    (p[i].0, m)
                })
                .collect();
        }
    }
    let y_label = a.y.join(", ");
    line_chart(&a.output, &a.title, &a.x, &y_label, &series, a.log_x)?;
    eprintln!("wrote {}", a.output.display());
    Ok(())
}
