//! Charts drawn on the server as inline SVG (`templates/chart.html`): no script, readable
//! without one, and every mark carries the exact value it stands for (`data-value`) and
//! its interval's start (`data-interval`), so a test can hold a chart against the API.
//!
//! [`Chart::draw`] is a pure function from series to the geometry the template renders;
//! the words and number formats of the user's language come in already made.

use jiff::Timestamp;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 28.0;
/// The most interval labels under the x axis before they crowd each other.
const MAX_X_LABELS: usize = 12;

/// What the values of a chart measure, which decides its axis steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Count,
    /// A share from 0 to 1.
    Share,
    Seconds,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Bars,
    Line,
}

/// One measure over the intervals: `None` where there was nothing to measure.
pub struct Series {
    /// Stable name for tests and styles, e.g. `arrivals`.
    pub key: &'static str,
    pub name: String,
    pub mark: Mark,
    pub values: Vec<Option<f64>>,
}

/// A goal drawn across the chart.
pub struct Target {
    pub value: f64,
    pub label: String,
}

pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub description: String,
    pub scale: Scale,
    /// Each interval's start and its label for the axis.
    pub intervals: Vec<(Timestamp, String)>,
    pub series: Vec<Series>,
    pub target: Option<Target>,
}

/// A chart ready to render: coordinates in the SVG's own units.
pub struct Drawing {
    pub id: &'static str,
    pub title: String,
    pub description: String,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    /// Horizontal grid lines with the value they stand at.
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub bars: Vec<Point>,
    pub lines: Vec<Polyline>,
    pub dots: Vec<Point>,
    pub target: Option<TargetLine>,
    pub legend: Vec<Legend>,
    /// The same numbers as a table: a header per series, a row per interval.
    pub headers: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
}

pub struct Tick {
    pub at: f64,
    pub label: String,
}

/// One value: a bar (`x`, `y`, `width`, `height`) or a dot (centred on `x`, `y`).
pub struct Point {
    pub series: &'static str,
    /// `s0`, `s1`, …: the series' colour.
    pub class: String,
    pub interval: String,
    /// Exactly as the metrics API gives it.
    pub value: String,
    /// The tooltip: interval, series and the formatted value.
    pub title: String,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

pub struct Polyline {
    pub series: &'static str,
    pub class: String,
    pub points: String,
}

pub struct TargetLine {
    pub y: f64,
    pub value: String,
    pub label: String,
}

pub struct Legend {
    pub class: String,
    pub name: String,
    pub x: f64,
    pub line: bool,
}

impl Chart {
    /// Lays the chart out; `format` writes a value of its scale in the user's language.
    pub fn draw(&self, format: &dyn Fn(f64) -> String) -> Drawing {
        let count = self.intervals.len().max(1);
        let band = (WIDTH - LEFT - RIGHT) / count as f64;
        let baseline = HEIGHT - BOTTOM;
        let highest = self
            .series
            .iter()
            .flat_map(|series| series.values.iter().flatten())
            .chain(self.target.as_ref().map(|target| &target.value))
            .fold(0.0_f64, |max, value| max.max(*value));
        let (top, step) = axis(self.scale, highest);
        let y = |value: f64| round(baseline - (baseline - TOP) * (value / top));

        let y_ticks = (0..)
            .map(|n| f64::from(n) * step)
            .take_while(|value| *value <= top + step / 1e6)
            .map(|value| Tick {
                at: y(value),
                label: format(value),
            })
            .collect();
        let label_every = count.div_ceil(MAX_X_LABELS);
        let x_ticks = self
            .intervals
            .iter()
            .enumerate()
            .step_by(label_every)
            .map(|(n, (_, label))| Tick {
                at: round(LEFT + band * (n as f64 + 0.5)),
                label: label.clone(),
            })
            .collect();

        let bar_series = self.series.iter().filter(|s| s.mark == Mark::Bars).count();
        let bar_width = band * 0.8 / bar_series.max(1) as f64;
        let (mut bars, mut lines, mut dots, mut legend) = (vec![], vec![], vec![], vec![]);
        let mut nth_bar = 0;
        for (index, series) in self.series.iter().enumerate() {
            let class = format!("s{index}");
            legend.push(Legend {
                class: class.clone(),
                name: series.name.clone(),
                x: LEFT + 150.0 * index as f64,
                line: series.mark == Mark::Line,
            });
            let points = self.intervals.iter().zip(&series.values).enumerate();
            let points = points.filter_map(|(n, ((start, label), value))| {
                let value = (*value)?;
                let point = Point {
                    series: series.key,
                    class: class.clone(),
                    interval: start.to_string(),
                    value: value.to_string(),
                    title: format!("{label} · {}: {}", series.name, format(value)),
                    x: LEFT + band * n as f64,
                    y: y(value),
                    width: 0.0,
                    height: 0.0,
                };
                Some((n, point))
            });
            match series.mark {
                Mark::Bars => {
                    let offset = band * 0.1 + bar_width * f64::from(nth_bar);
                    nth_bar += 1;
                    bars.extend(points.map(|(_, point)| Point {
                        x: round(point.x + offset),
                        width: round(bar_width),
                        height: round(baseline - point.y),
                        ..point
                    }));
                }
                Mark::Line => {
                    // A missing value breaks the line rather than bridging the gap.
                    let mut run: Vec<String> = Vec::new();
                    let mut previous = None;
                    for (n, point) in points {
                        let point = Point {
                            x: round(point.x + band / 2.0),
                            ..point
                        };
                        if previous.is_some_and(|previous| previous + 1 != n) {
                            lines.push(polyline(series.key, &class, std::mem::take(&mut run)));
                        }
                        run.push(format!("{},{}", point.x, point.y));
                        previous = Some(n);
                        dots.push(point);
                    }
                    if !run.is_empty() {
                        lines.push(polyline(series.key, &class, std::mem::take(&mut run)));
                    }
                }
            }
        }
        let target = self.target.as_ref().map(|target| TargetLine {
            y: y(target.value),
            value: target.value.to_string(),
            label: target.label.clone(),
        });

        let headers = self.series.iter().map(|s| s.name.clone()).collect();
        let rows = self
            .intervals
            .iter()
            .enumerate()
            .map(|(n, (_, label))| {
                let cells = self.series.iter().map(|series| {
                    series
                        .values
                        .get(n)
                        .copied()
                        .flatten()
                        .map_or_else(|| "–".to_owned(), format)
                });
                (label.clone(), cells.collect())
            })
            .collect();
        Drawing {
            id: self.id,
            title: self.title.clone(),
            description: self.description.clone(),
            width: WIDTH,
            height: HEIGHT,
            left: LEFT,
            right: WIDTH - RIGHT,
            y_ticks,
            x_ticks,
            bars,
            lines,
            dots,
            target,
            legend,
            headers,
            rows,
        }
    }
}

fn polyline(series: &'static str, class: &str, run: Vec<String>) -> Polyline {
    Polyline {
        series,
        class: class.to_owned(),
        points: run.join(" "),
    }
}

/// The axis' top and its step: a few round steps that reach past the highest value.
fn axis(scale: Scale, highest: f64) -> (f64, f64) {
    if scale == Scale::Share {
        return (1.0, 0.25);
    }
    let wanted = highest / 4.0;
    let step = match scale {
        Scale::Seconds => [
            1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
        ]
        .into_iter()
        .chain((1..).map(|hours| 1800.0 * f64::from(hours)))
        .find(|step| *step >= wanted)
        .unwrap_or(1.0),
        _ => {
            // 1, 2 or 5 times a power of ten; counts step by whole numbers.
            let power = 10_f64.powf(wanted.max(1.0).log10().floor());
            [1.0, 2.0, 5.0, 10.0]
                .into_iter()
                .map(|m| m * power)
                .find(|step| *step >= wanted)
                .unwrap_or(power)
        }
    };
    let top = (highest / step).ceil().max(1.0) * step;
    (top, step)
}

/// SVG coordinates to a tenth of a unit: shorter markup, no visible difference.
fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(n: usize) -> Vec<(Timestamp, String)> {
        let start: Timestamp = "2026-03-02T00:00:00Z".parse().unwrap();
        (0..n)
            .map(|h| {
                let at = start + jiff::SignedDuration::from_hours(h as i64);
                (at, format!("{h:02}:00"))
            })
            .collect()
    }

    fn chart(scale: Scale, series: Vec<Series>, target: Option<Target>) -> Chart {
        Chart {
            id: "chart",
            title: "Title".into(),
            description: "Description".into(),
            scale,
            intervals: hours(24),
            series,
            target,
        }
    }

    fn series(key: &'static str, mark: Mark, values: Vec<Option<f64>>) -> Series {
        Series {
            key,
            name: key.to_uppercase(),
            mark,
            values,
        }
    }

    #[test]
    fn every_value_is_a_mark_with_its_exact_value_and_interval() {
        let mut arrivals = vec![Some(0.0); 24];
        arrivals[8] = Some(7.0);
        let mut handled = vec![Some(0.0); 24];
        handled[8] = Some(3.0);
        let drawing = chart(
            Scale::Count,
            vec![
                series("arrivals", Mark::Bars, arrivals),
                series("handled", Mark::Bars, handled),
            ],
            None,
        )
        .draw(&|v| format!("{v}"));
        assert_eq!(drawing.bars.len(), 48);
        let eight: Vec<&Point> = drawing
            .bars
            .iter()
            .filter(|bar| bar.interval == "2026-03-02T08:00:00Z")
            .collect();
        assert_eq!(eight[0].series, "arrivals");
        assert_eq!(eight[0].value, "7");
        assert_eq!(eight[1].value, "3");
        // Side by side in their interval's band, and as tall as their values.
        assert!(eight[0].x < eight[1].x);
        assert!(eight[0].x + eight[0].width <= eight[1].x + 0.1);
        let ratio = eight[0].height / eight[1].height;
        assert!((ratio - 7.0 / 3.0).abs() < 0.01, "{ratio}");
        // The axis reaches past the highest value in round steps: 0, 2, …, 8.
        let labels: Vec<&str> = drawing.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "2", "4", "6", "8"]);
        assert_eq!(drawing.x_ticks.len(), 12);
        assert_eq!(
            drawing.rows[8],
            ("08:00".into(), vec!["7".into(), "3".into()])
        );
    }

    #[test]
    fn a_line_breaks_where_there_is_no_value_and_the_target_is_drawn() {
        let mut level = vec![None; 24];
        for hour in [8, 9, 11] {
            level[hour] = Some(0.75);
        }
        level[10] = None;
        let drawing = chart(
            Scale::Share,
            vec![series("service_level", Mark::Line, level)],
            Some(Target {
                value: 0.8,
                label: "Goal".into(),
            }),
        )
        .draw(&|v| format!("{}%", v * 100.0));
        assert_eq!(drawing.dots.len(), 3);
        assert_eq!(drawing.lines.len(), 2);
        assert_eq!(drawing.lines[0].points.split(' ').count(), 2);
        assert_eq!(drawing.rows[10].1, ["–"]);
        let target = drawing.target.unwrap();
        assert_eq!(target.value, "0.8");
        assert!(target.y < drawing.dots[0].y, "the goal is above 75 %");
        assert_eq!(drawing.y_ticks.last().unwrap().label, "100%");
    }

    #[test]
    fn axes_step_in_round_numbers_and_durations() {
        assert_eq!(axis(Scale::Count, 0.0), (1.0, 1.0));
        assert_eq!(axis(Scale::Count, 3.0), (3.0, 1.0));
        assert_eq!(axis(Scale::Count, 37.0), (40.0, 10.0));
        assert_eq!(axis(Scale::Count, 180.0), (200.0, 50.0));
        assert_eq!(axis(Scale::Seconds, 300.0), (360.0, 120.0));
        assert_eq!(axis(Scale::Seconds, 3000.0), (3600.0, 900.0));
        assert_eq!(axis(Scale::Share, 0.3), (1.0, 0.25));
    }
}
