//! The figures of a sweep, as SVG text: test error against energy under one profile (network
//! families by marker, precisions by colour, the Pareto front drawn through its points, the
//! accuracy targets as lines and the network chosen at each labelled), and the split of the
//! chosen networks' energy into computation (E_C), weight accesses (E_W) and activation
//! accesses (E_A), each bar naming the targets it is chosen at.
//! Drawn with plotters' SVG backend into a String: text is written as `<text>` elements, so no
//! font file is read, and the same points always give the same bytes. Bad data (no point, one
//! point, equal energies, energies that a log axis cannot show) gives a readable figure, never a
//! panic.

use std::error::Error;
use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::pareto::{min_energy_at, pareto_front};
use super::point::{bits_label, precisions, units_of, PointResult};
use super::report::target_text;

const FONT: &str = "sans-serif";
/// The outline of family markers in the legend, and the accuracy targets.
const NEUTRAL: RGBColor = RGBColor(90, 90, 90);
const SCATTER_SIZE: (u32, u32) = (900, 600);
const MARKER_SIZE: i32 = 5;
/// The square marker's corners, in pixels from its point.
const SQUARE: [(i32, i32); 2] = [(-MARKER_SIZE, -MARKER_SIZE), (MARKER_SIZE, MARKER_SIZE)];
const BREAKDOWN_WIDTH: u32 = 900;
/// Height of one bar of the breakdown, and of everything around the bars.
const BREAKDOWN_ROW_HEIGHT: u32 = 36;
const BREAKDOWN_FRAME_HEIGHT: u32 = 150;
/// The strip under the breakdown's caption that holds its legend, above the bars.
const BREAKDOWN_LEGEND_HEIGHT: u32 = 30;
/// Room a log axis leaves beside the extreme points before rounding out to a 1-2-5 step.
const LOG_AXIS_PADDING: f64 = 1.2;
/// Multiples of a power of ten that bound and label a log axis.
const LOG_STEPS: [f64; 3] = [1.0, 2.0, 5.0];
/// Beyond this many decades a log axis labels the powers of ten only.
const MAX_DECADES_WITH_STEPS: f64 = 3.0;

type Drawing<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawOutcome = Result<(), Box<dyn Error>>;

/// A network chosen at one or more accuracy targets: the least energy under a profile among the
/// networks that reach the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Winner<'a> {
    pub point: &'a PointResult,
    /// The targets (percent) it is chosen at, in the sweep's order.
    pub targets: Vec<f64>,
}

impl Winner<'_> {
    /// "88 %", "85 % and 88 %".
    fn targets_text(&self) -> String {
        let texts: Vec<String> = self
            .targets
            .iter()
            .map(|&target| format!("{} %", target_text(target)))
            .collect();
        match texts.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => texts.concat(),
        }
    }
}

/// The network chosen at each target under `profile`, each once, in the order of the first
/// target it wins; targets no network reaches choose none.
pub fn winners<'a>(points: &'a [PointResult], profile: &str, targets: &[f64]) -> Vec<Winner<'a>> {
    let mut chosen: Vec<(usize, Vec<f64>)> = Vec::new();
    for &target in targets {
        let Some(index) = min_energy_at(points, profile, target, None) else {
            continue;
        };
        match chosen.iter_mut().find(|(i, _)| *i == index) {
            Some((_, won)) => won.push(target),
            None => chosen.push((index, vec![target])),
        }
    }
    chosen
        .into_iter()
        .map(|(index, targets)| Winner {
            point: &points[index],
            targets,
        })
        .collect()
}

/// The marker of a network family in the scatter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

/// MLPs are circles and CNNs triangles; other families take the remaining shapes in name order.
fn family_markers(points: &[&PointResult]) -> Vec<(String, Marker)> {
    let families: std::collections::BTreeSet<&str> =
        points.iter().map(|point| point.family.as_str()).collect();
    let mut spare = [Marker::Square, Marker::Cross].into_iter().cycle();
    families
        .into_iter()
        .map(|family| {
            let marker = match family {
                "mlp" => Marker::Circle,
                "cnn" => Marker::Triangle,
                _ => spare.next().unwrap_or(Marker::Cross),
            };
            (family.to_string(), marker)
        })
        .collect()
}

/// "MLP", "CNN": how the legend names a family.
fn family_label(family: &str) -> String {
    family.to_uppercase()
}

/// Scatter of test error (%) against the energy of one inference under `profile` (log scale):
/// one marker shape per network family, one colour per precision, a legend of both, the Pareto
/// front drawn as a line through its points, each ringed, a line at the error of each accuracy
/// target in `targets` (percent), and the network chosen at each target labelled. Points with
/// no positive energy under the profile cannot sit on a log axis and are left out.
pub fn error_vs_energy_svg(points: &[PointResult], profile: &str, targets: &[f64]) -> String {
    let plotted: Vec<(&PointResult, (f64, f64))> = points
        .iter()
        .filter_map(|point| Some((point, log_plottable(point, profile)?)))
        .collect();
    let front: Vec<(f64, f64)> = pareto_front(points, profile)
        .into_iter()
        .filter_map(|index| log_plottable(&points[index], profile))
        .collect();
    let chosen = winners(points, profile, targets);
    let target_errors: Vec<(f64, f64)> = targets
        .iter()
        .map(|&target| (target, 100.0 - target))
        .filter(|(_, error)| error.is_finite())
        .collect();
    let energy_axis = log_axis_range(plotted.iter().map(|(_, (_, energy))| *energy));
    // The targets are drawn even above or below every point.
    let error_axis = linear_axis_range(
        plotted
            .iter()
            .map(|(_, (error, _))| *error)
            .chain(target_errors.iter().map(|(_, error)| *error)),
    );
    let energy_title = match units_of(points, profile) {
        Some(units) => format!("energy of one inference ({units}, log scale)"),
        None => "energy of one inference (log scale)".to_string(),
    };
    let markers = family_markers(&plotted.iter().map(|(point, _)| *point).collect::<Vec<_>>());
    render_svg(SCATTER_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Test error against energy, profile {profile}"),
                (FONT, 22),
            )
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(
                energy_axis
                    .clone()
                    .log_scale()
                    .with_key_points(log_ticks(&energy_axis)),
                error_axis,
            )?;
        chart
            .configure_mesh()
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .x_desc(energy_title)
            .y_desc("test error of the integer model (%)")
            .x_label_formatter(&|energy| short_scientific(*energy))
            .draw()?;
        let (x_range, y_range) = (chart.x_range(), chart.y_range());
        // Targets first, under the points: a line across, labelled at its left end.
        for (target, error) in &target_errors {
            chart.draw_series(DashedLineSeries::new(
                [(x_range.start, *error), (x_range.end, *error)],
                8,
                5,
                NEUTRAL.stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((x_range.start, *error))
                    + Text::new(
                        format!(
                            "target {} % (error {} %)",
                            target_text(*target),
                            target_text(*error)
                        ),
                        (6, -3),
                        TextStyle::from((FONT, 13).into_font())
                            .color(&NEUTRAL)
                            .pos(Pos::new(HPos::Left, VPos::Bottom)),
                    ),
            ))?;
        }
        if plotted.is_empty() {
            let centre = (
                (x_range.start * x_range.end).sqrt(),
                (y_range.start + y_range.end) / 2.0,
            );
            chart.draw_series(std::iter::once(Text::new(
                format!("no point was measured under profile {profile}"),
                centre,
                centred_text(18, HPos::Center),
            )))?;
            return Ok(());
        }
        for (family, shape) in &markers {
            for bits in precisions(plotted.iter().map(|(point, _)| *point)) {
                let colour = precision_colour(bits);
                let at = plotted
                    .iter()
                    .filter(|(point, _)| &point.family == family && point.bits == bits)
                    .map(|(_, (error, energy))| (*energy, *error));
                let style = colour.filled();
                // Each shape is its own element type.
                match shape {
                    Marker::Circle => {
                        chart.draw_series(at.map(|at| Circle::new(at, MARKER_SIZE, style)))?;
                    }
                    Marker::Triangle => {
                        chart.draw_series(
                            at.map(|at| TriangleMarker::new(at, MARKER_SIZE + 1, style)),
                        )?;
                    }
                    Marker::Square => {
                        chart.draw_series(
                            at.map(|at| EmptyElement::at(at) + Rectangle::new(SQUARE, style)),
                        )?;
                    }
                    Marker::Cross => {
                        chart.draw_series(
                            at.map(|at| Cross::new(at, MARKER_SIZE, style.stroke_width(2))),
                        )?;
                    }
                }
            }
        }
        // The legend: families by shape (in grey), then precisions by colour.
        for (family, shape) in &markers {
            let entry = chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label(family_label(family));
            let (style, at) = (NEUTRAL.filled(), |(x, y): (i32, i32)| (x + 10, y));
            match shape {
                Marker::Circle => {
                    entry.legend(move |xy| Circle::new(at(xy), MARKER_SIZE, style));
                }
                Marker::Triangle => {
                    entry.legend(move |xy| TriangleMarker::new(at(xy), MARKER_SIZE + 1, style));
                }
                Marker::Square => {
                    entry
                        .legend(move |xy| EmptyElement::at(at(xy)) + Rectangle::new(SQUARE, style));
                }
                Marker::Cross => {
                    entry.legend(move |xy| Cross::new(at(xy), MARKER_SIZE, style.stroke_width(2)));
                }
            }
        }
        for bits in precisions(plotted.iter().map(|(point, _)| *point)) {
            let colour = precision_colour(bits);
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label(bits_label(bits))
                .legend(move |(x, y)| {
                    Rectangle::new([(x + 4, y - 5), (x + 16, y + 5)], colour.filled())
                });
        }
        let as_xy = |(error, energy): &(f64, f64)| (*energy, *error);
        chart
            .draw_series(LineSeries::new(
                front.iter().map(as_xy),
                BLACK.stroke_width(1),
            ))?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
        chart.draw_series(
            front
                .iter()
                .map(|point| Circle::new(as_xy(point), MARKER_SIZE + 4, BLACK.stroke_width(1))),
        )?;
        // The chosen networks: a heavier ring and their id with the targets they win.
        let chosen_at: Vec<((f64, f64), String)> = chosen
            .iter()
            .filter_map(|winner| {
                let (error, energy) = log_plottable(winner.point, profile)?;
                Some((
                    (energy, error),
                    format!("{}: chosen at {}", winner.point.id, winner.targets_text()),
                ))
            })
            .collect();
        if !chosen_at.is_empty() {
            chart
                .draw_series(
                    chosen_at
                        .iter()
                        .map(|(at, _)| Circle::new(*at, MARKER_SIZE + 5, BLACK.stroke_width(2))),
                )?
                .label("chosen at a target")
                .legend(|(x, y)| Circle::new((x + 10, y), MARKER_SIZE + 1, BLACK.stroke_width(2)));
            chart.draw_series(chosen_at.iter().map(|(at, label)| {
                EmptyElement::at(*at)
                    + Text::new(
                        label.clone(),
                        (MARKER_SIZE + 8, -(MARKER_SIZE + 8)),
                        TextStyle::from((FONT, 13).into_font())
                            .pos(Pos::new(HPos::Left, VPos::Bottom)),
                    )
            }))?;
        }
        draw_legend(&mut chart)
    })
}

/// For each chosen network, top to bottom in the given order, a horizontal bar of its energy
/// under `profile` split into E_C, E_W and E_A (each summed over the layers), labelled by the
/// network's id, with its total and the targets it is chosen at past its end. A linear axis, so
/// that the lengths of the stacked parts compare truly; a network whose layers were not measured
/// gets a note instead of a bar. The legend sits in a strip of its own above the bars.
pub fn energy_breakdown_svg(winners: &[Winner], profile: &str) -> String {
    let rows = winners.len().max(1);
    let splits: Vec<_> = winners
        .iter()
        .map(|winner| winner.point.energy_split(profile))
        .collect();
    let longest_total = splits
        .iter()
        .flatten()
        .map(|split| split.total())
        .filter(|total| total.is_finite() && *total > 0.0)
        .max_by(f64::total_cmp)
        .unwrap_or(1.0);
    let ids: Vec<&str> = winners
        .iter()
        .map(|winner| winner.point.id.as_str())
        .collect();
    let id_chars = ids.iter().map(|id| id.chars().count()).max().unwrap_or(0);
    let id_area = u32::try_from(8 * id_chars + 20)
        .unwrap_or(u32::MAX)
        .clamp(60, 400);
    let height = BREAKDOWN_FRAME_HEIGHT
        .saturating_add(BREAKDOWN_LEGEND_HEIGHT)
        .saturating_add(
            BREAKDOWN_ROW_HEIGHT.saturating_mul(u32::try_from(rows).unwrap_or(u32::MAX)),
        );
    let energy_title = match units_of(winners.iter().map(|winner| winner.point), profile) {
        Some(units) => format!("energy of one inference ({units})"),
        None => "energy of one inference".to_string(),
    };
    // Row 0 is drawn at the bottom; the first network belongs at the top. The same map turns
    // an index into its row and a row back into the index.
    let flip = |index_or_row: usize| rows.checked_sub(index_or_row + 1);
    let parts = [
        ("E_C, computation", RGBColor(68, 119, 170)),
        ("E_W, weight accesses", RGBColor(221, 170, 51)),
        ("E_A, activation accesses", RGBColor(187, 85, 102)),
    ];
    render_svg((BREAKDOWN_WIDTH, height), |root| {
        let root = root.titled(
            &format!("Energy of one inference by kind, profile {profile}"),
            (FONT, 22),
        )?;
        let (legend, plot) = root.split_vertically(BREAKDOWN_LEGEND_HEIGHT);
        draw_strip_legend(&legend, &parts)?;
        // Room past the longest bar for its total and targets.
        let energy_axis = 0.0..longest_total * 1.5;
        let mut chart = ChartBuilder::on(&plot)
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(id_area)
            // A segmented 0..n has a segment for each of 0..=n.
            .build_cartesian_2d(energy_axis, (0..rows - 1).into_segmented())?;
        chart
            .configure_mesh()
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .disable_y_mesh()
            .y_labels(rows)
            .y_label_formatter(&|row| match row {
                SegmentValue::CenterOf(row) => flip(*row)
                    .and_then(|index| ids.get(index))
                    .map_or_else(String::new, |id| id.to_string()),
                _ => String::new(),
            })
            .x_desc(energy_title)
            .x_label_formatter(&|energy| short_scientific(*energy))
            .draw()?;
        if winners.is_empty() {
            chart.draw_series(std::iter::once(Text::new(
                "no network to show",
                (longest_total * 0.6, SegmentValue::CenterOf(0)),
                centred_text(18, HPos::Center),
            )))?;
            return Ok(());
        }
        for (part, (_, colour)) in parts.iter().enumerate() {
            let bars = splits.iter().enumerate().filter_map(|(index, split)| {
                let split = (*split)?;
                let stack = [split.e_c, split.e_w, split.e_a];
                let start: f64 = stack[..part].iter().sum();
                let row = flip(index)?;
                let mut bar = Rectangle::new(
                    [
                        (start, SegmentValue::Exact(row)),
                        (start + stack[part], SegmentValue::Exact(row + 1)),
                    ],
                    colour.filled(),
                );
                bar.set_margin(6, 6, 0, 0);
                Some(bar)
            });
            chart.draw_series(bars)?;
        }
        let note_style = centred_text(14, HPos::Left);
        chart.draw_series(splits.iter().zip(winners).enumerate().filter_map(
            |(index, (split, winner))| {
                let row = flip(index)?;
                let chosen = format!("chosen at {}", winner.targets_text());
                let (at, note) = match split {
                    Some(split) => (
                        split.total(),
                        format!(" {}, {chosen}", short_scientific(split.total())),
                    ),
                    None => (0.0, format!(" not measured under {profile}, {chosen}")),
                };
                Some(Text::new(
                    note,
                    (at, SegmentValue::CenterOf(row)),
                    note_style.clone(),
                ))
            },
        ))?;
        Ok(())
    })
}

/// A legend in a row of its own: a swatch and a name for each part, left to right.
fn draw_strip_legend(area: &Drawing, parts: &[(&str, RGBColor)]) -> DrawOutcome {
    let mut x = 20;
    let y = i32::try_from(BREAKDOWN_LEGEND_HEIGHT / 2).unwrap_or(0);
    for (name, colour) in parts {
        area.draw(&Rectangle::new(
            [(x, y - 6), (x + 14, y + 6)],
            colour.filled(),
        ))?;
        area.draw(&Text::new(
            name.to_string(),
            (x + 20, y),
            centred_text(14, HPos::Left),
        ))?;
        // Room for the name at about 8 pixels a character.
        x += 40 + 8 * i32::try_from(name.chars().count()).unwrap_or(0);
    }
    Ok(())
}

/// The series legend of the scatter, in its upper right corner.
fn draw_legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
) -> DrawOutcome {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}

/// Draws on a white canvas of `size` pixels and returns the SVG; should plotters report an
/// error, a small SVG that states it instead.
/// One layer or network, estimated two ways: by the energy model and from measured activity.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelAndMeasured {
    /// The profile both are priced under: points of one series share a colour.
    pub series: String,
    /// "mlp4 fc1"; a whole network's total is drawn larger and labelled.
    pub label: String,
    pub total: bool,
    pub model: f64,
    pub measured: f64,
}

/// Series colours of [`model_against_measured_svg`], in the order the series first appear.
const SERIES_COLOURS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// Measured against modelled energy, log-log: a point per layer (small) and per network total
/// (large, labelled), a colour per profile, and the diagonal where the two agree.
pub fn model_against_measured_svg(points: &[ModelAndMeasured], units: &str) -> String {
    let plotted: Vec<&ModelAndMeasured> = points
        .iter()
        .filter(|p| {
            p.model > 0.0 && p.measured > 0.0 && p.model.is_finite() && p.measured.is_finite()
        })
        .collect();
    let mut series: Vec<&str> = Vec::new();
    for p in &plotted {
        if !series.contains(&p.series.as_str()) {
            series.push(&p.series);
        }
    }
    // One range for both axes, so that the diagonal is the diagonal.
    let axis = log_axis_range(plotted.iter().flat_map(|p| [p.model, p.measured]));
    render_svg(SCATTER_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Measured against modelled energy, per layer and network",
                (FONT, 22),
            )
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(
                axis.clone().log_scale().with_key_points(log_ticks(&axis)),
                axis.clone().log_scale().with_key_points(log_ticks(&axis)),
            )?;
        chart
            .configure_mesh()
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .x_desc(format!("energy model ({units}, log scale)"))
            .y_desc(format!("counted activity, calibrated ({units}, log scale)"))
            .x_label_formatter(&|e| short_scientific(*e))
            .y_label_formatter(&|e| short_scientific(*e))
            .draw()?;
        chart
            .draw_series(DashedLineSeries::new(
                [(axis.start, axis.start), (axis.end, axis.end)],
                8,
                5,
                NEUTRAL.stroke_width(1),
            ))?
            .label("measured = model")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], NEUTRAL.stroke_width(1)));
        for (index, name) in series.iter().enumerate() {
            let colour = SERIES_COLOURS[index % SERIES_COLOURS.len()];
            let of_series = plotted.iter().filter(|p| p.series == *name);
            chart
                .draw_series(
                    of_series.clone().filter(|p| !p.total).map(|p| {
                        Circle::new((p.model, p.measured), MARKER_SIZE - 1, colour.filled())
                    }),
                )?
                .label(name.to_string())
                .legend(move |(x, y)| Circle::new((x + 10, y), MARKER_SIZE, colour.filled()));
            chart.draw_series(of_series.filter(|p| p.total).map(|p| {
                EmptyElement::at((p.model, p.measured))
                    + Rectangle::new(SQUARE, colour.filled())
                    + Text::new(
                        p.label.clone(),
                        (MARKER_SIZE + 4, 0),
                        centred_text(12, HPos::Left),
                    )
            }))?;
        }
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label("network total (square)")
            .legend(|(x, y)| {
                EmptyElement::at((x + 10, y)) + Rectangle::new(SQUARE, NEUTRAL.filled())
            });
        // Measurements mostly fall below the diagonal: the legend goes above it.
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()?;
        Ok(())
    })
}

fn render_svg(size: (u32, u32), draw: impl FnOnce(&Drawing) -> DrawOutcome) -> String {
    let mut svg = String::new();
    let outcome = {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(Box::<dyn Error>::from)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Box::<dyn Error>::from))
    };
    match outcome {
        Ok(()) => svg,
        Err(error) => failure_svg(size, &error.to_string()),
    }
}

fn failure_svg((width, height): (u32, u32), message: &str) -> String {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<svg width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <text x=\"10\" y=\"30\" font-family=\"{FONT}\">the figure could not be drawn: {escaped}</text>\n\
         </svg>\n"
    )
}

/// Text of `size` points, centred vertically on its position and placed horizontally by `h_pos`.
fn centred_text(size: u32, h_pos: HPos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).pos(Pos::new(h_pos, VPos::Center))
}

/// (test error, energy) of a point that a log energy axis can show.
fn log_plottable(point: &PointResult, profile: &str) -> Option<(f64, f64)> {
    point
        .error_and_energy(profile)
        .filter(|(_, energy)| *energy > 0.0)
}

/// A log axis from the 1-2-5 step at or below the least value to the one at or above the
/// greatest, after padding both: even a single point sits inside, and both ends carry a label.
fn log_axis_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (least, greatest) = extremes(values).unwrap_or((1.0, 10.0));
    let bottom =
        step_at_or_below(least / LOG_AXIS_PADDING).map(|bottom| bottom.max(f64::MIN_POSITIVE));
    let top = step_at_or_above(greatest * LOG_AXIS_PADDING).map(|top| top.min(f64::MAX));
    match (bottom, top) {
        (Some(bottom), Some(top)) if bottom < top => bottom..top,
        _ => 1.0..10.0,
    }
}

/// The labelled ticks of a log axis: 1, 2 and 5 times the powers of ten within it, or, over
/// more than [`MAX_DECADES_WITH_STEPS`] decades, the powers of ten alone (at most about ten).
fn log_ticks(axis: &Range<f64>) -> Vec<f64> {
    let decades = (axis.end / axis.start).log10();
    let steps: &[f64] = if decades > MAX_DECADES_WITH_STEPS {
        &[1.0]
    } else {
        &LOG_STEPS
    };
    let stride = (decades / 10.0).ceil().max(1.0) as usize;
    // Float casts saturate, so absurd axes give few ticks rather than a panic.
    let first = axis.start.log10().floor() as i32;
    let last = axis.end.log10().ceil() as i32;
    // Steps are products of powers of ten and may miss an end by an ulp.
    let inside =
        |tick: &f64| *tick >= axis.start * (1.0 - 1e-9) && *tick <= axis.end * (1.0 + 1e-9);
    (first..=last)
        .step_by(stride)
        .flat_map(|exponent| steps.iter().map(move |step| step * 10f64.powi(exponent)))
        .filter(inside)
        .collect()
}

/// The 1-2-5 steps from a tenth of `value`'s decade to ten times it, ascending.
fn log_steps_around(value: f64) -> impl Iterator<Item = f64> {
    let decade = 10f64.powf(value.log10().floor());
    [0.1, 1.0, 10.0]
        .into_iter()
        .flat_map(move |scale| LOG_STEPS.map(|step| step * scale * decade))
}

fn step_at_or_below(value: f64) -> Option<f64> {
    log_steps_around(value).filter(|step| *step <= value).last()
}

fn step_at_or_above(value: f64) -> Option<f64> {
    log_steps_around(value).find(|step| *step >= value)
}

/// A linear axis around the values with a margin, never below zero unless a value is.
fn linear_axis_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let Some((least, greatest)) = extremes(values) else {
        return 0.0..100.0;
    };
    let margin = (0.1 * (greatest - least)).max(0.5);
    let bottom = least - margin;
    let bottom = if least >= 0.0 {
        bottom.max(0.0)
    } else {
        bottom
    };
    bottom..greatest + margin
}

fn extremes(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |range, value| match range {
        None => Some((value, value)),
        Some((least, greatest)) => Some((least.min(value), greatest.max(value))),
    })
}

/// The colour of a precision: the same in every figure, whatever other precisions are shown.
fn precision_colour(bits: u32) -> RGBColor {
    let (r, g, b) = crate::palette::precision_rgb(bits);
    RGBColor(r, g, b)
}

/// Three significant digits without trailing zeros: "1e6", "2.5e6", "3.29e-3".
fn short_scientific(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let text = format!("{value:.2e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explore::point::tests::point;

    /// How many `<text>` elements say exactly `text`.
    fn text_elements(svg: &str, text: &str) -> usize {
        svg.matches(&format!(">\n{text}\n</text>")).count()
    }

    /// MLPs and CNNs at several precisions; targets 88 % and 89 % choose two of them.
    fn sweep() -> Vec<PointResult> {
        let mut points = vec![
            point("mlp-q1-d1-w64", 1, 86.0, 1.0e5),
            point("mlp-q1-d2-w256", 1, 88.5, 3.0e5),
            point("mlp-q2-d1-w64", 2, 88.2, 2.5e5),
            point("mlp-q4-d1-w64", 4, 89.0, 5.0e5),
            point("mlp-q8-d1-w64", 8, 89.2, 1.0e6),
            point("cnn-q4-nl1-nf8", 4, 90.5, 2.0e6),
            point("cnn-q8-nl1-nf8", 8, 90.6, 4.0e6),
        ];
        for cnn in &mut points[5..] {
            cnn.family = "cnn".to_string();
        }
        points
    }

    const TARGETS: [f64; 3] = [88.0, 89.0, 99.0];

    #[test]
    fn winners_are_grouped_by_network_and_unreached_targets_choose_none() {
        let points = sweep();
        let chosen = winners(&points, "p", &[88.0, 90.0, 88.1]);
        let summary: Vec<(&str, Vec<f64>)> = chosen
            .iter()
            .map(|w| (w.point.id.as_str(), w.targets.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("mlp-q2-d1-w64", vec![88.0, 88.1]),
                ("cnn-q4-nl1-nf8", vec![90.0])
            ]
        );
        assert_eq!(chosen[0].targets_text(), "88.0 % and 88.1 %");
        assert!(winners(&points, "p", &[99.0]).is_empty());
    }

    #[test]
    fn the_scatter_shows_families_precisions_targets_and_winners() {
        let svg = error_vs_energy_svg(&sweep(), "p", &TARGETS);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("profile p"));
        for label in [
            "MLP",
            "CNN",
            "1 bit",
            "2 bits",
            "4 bits",
            "8 bits",
            "Pareto front",
            "chosen at a target",
            "target 88.0 % (error 12.0 %)",
            "target 89.0 % (error 11.0 %)",
            "target 99.0 % (error 1.0 %)",
            "mlp-q2-d1-w64: chosen at 88.0 %",
            "mlp-q4-d1-w64: chosen at 89.0 %",
        ] {
            assert_eq!(text_elements(&svg, label), 1, "{label}");
        }
        // CNNs are triangles, MLPs circles (the legend's markers included).
        assert!(svg.matches("<polygon").count() >= 3, "no triangles");
        assert!(svg.contains("energy of one inference (u, log scale)"));
        assert!(!svg.contains("NaN"));
        // Without targets, no line and no label.
        let bare = error_vs_energy_svg(&sweep(), "p", &[]);
        assert!(!bare.contains("target ") && !bare.contains("chosen at"));
    }

    #[test]
    fn degenerate_sweeps_still_draw() {
        let single = vec![point("only", 4, 90.0, 7.0)];
        let equal = vec![point("a", 1, 80.0, 5.0), point("b", 2, 90.0, 5.0)];
        let mut unmeasured = vec![point("zero", 1, 80.0, 0.0), point("nan", 2, 80.0, 1.0)];
        unmeasured[1].energy.insert("p".into(), f64::NAN);
        let mut odd_family = vec![point("x", 3, 50.0, 2.0), point("y", 40, 60.0, 3.0)];
        odd_family[0].family = "transformer".into();
        for points in [single, equal, unmeasured, odd_family, Vec::new()] {
            for targets in [&[][..], &[85.0, f64::NAN][..]] {
                let svg = error_vs_energy_svg(&points, "p", targets);
                assert!(
                    svg.starts_with("<svg") && !svg.contains("could not be drawn"),
                    "{svg}"
                );
            }
        }
        assert!(
            error_vs_energy_svg(&[], "p", &[]).contains("no point was measured under profile p")
        );
    }

    #[test]
    fn the_breakdown_has_a_bar_a_winner_and_names_its_targets() {
        let points = sweep();
        let mut chosen = winners(&points, "p", &TARGETS);
        let mut unmeasured = point("mlp-q16-d1-w64", 16, 90.0, 1.0);
        unmeasured.layers.clear();
        chosen.push(Winner {
            point: &unmeasured,
            targets: vec![85.0, 86.0, 87.0],
        });
        let svg = energy_breakdown_svg(&chosen, "p");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("profile p"));
        for label in ["mlp-q2-d1-w64", "mlp-q4-d1-w64", "mlp-q16-d1-w64"] {
            assert_eq!(text_elements(&svg, label), 1, "{label}");
        }
        for note in [
            " 2.5e5, chosen at 88.0 %",
            " 5e5, chosen at 89.0 %",
            " not measured under p, chosen at 85.0 %, 86.0 % and 87.0 %",
        ] {
            assert_eq!(text_elements(&svg, note), 1, "{note}");
        }
        for part in [
            "E_C, computation",
            "E_W, weight accesses",
            "E_A, activation accesses",
        ] {
            assert_eq!(text_elements(&svg, part), 1, "{part}");
        }
        // Every row of the axis names a network: no empty rows.
        let ids = ["mlp-q2-d1-w64", "mlp-q4-d1-w64", "mlp-q16-d1-w64"];
        let row_labels = svg
            .split("<text")
            .filter(|element| element.contains("text-anchor=\"end\""))
            .filter(|element| {
                !element.contains("e5") && !element.contains("e6") && !element.contains(">\n0\n")
            })
            .count();
        assert_eq!(row_labels, ids.len(), "{svg}");
        let empty = energy_breakdown_svg(&[], "p");
        assert!(empty.starts_with("<svg") && empty.contains("no network to show"));
    }

    #[test]
    fn the_same_points_give_the_same_bytes() {
        let points = sweep();
        assert_eq!(
            error_vs_energy_svg(&points, "p", &TARGETS),
            error_vs_energy_svg(&points, "p", &TARGETS)
        );
        let chosen = winners(&points, "p", &TARGETS);
        assert_eq!(
            energy_breakdown_svg(&chosen, "p"),
            energy_breakdown_svg(&chosen, "p")
        );
    }

    #[test]
    fn measured_against_model_draws_every_positive_point_with_one_label_a_total() {
        let point =
            |series: &str, label: &str, total: bool, model: f64, measured: f64| ModelAndMeasured {
                series: series.into(),
                label: label.into(),
                total,
                model,
                measured,
            };
        let points = vec![
            point("a", "net fc1", false, 1e3, 2e2),
            point("a", "net fc2", false, 5e4, 9e4),
            point("a", "net", true, 5.1e4, 9.02e4),
            point("b", "net fc1", false, 3e3, 2e2),
            // Not drawable on a log axis: left out, not a panic.
            point("b", "net fc2", false, 0.0, 1.0),
        ];
        let svg = model_against_measured_svg(&points, "u");
        assert_eq!(svg, model_against_measured_svg(&points, "u"));
        // Three layer points; the total is a labelled square.
        assert_eq!(svg.matches("<circle").count(), 3 + 2, "{svg}");
        assert_eq!(text_elements(&svg, "net"), 1, "{svg}");
        assert!(svg.contains("measured = model") && svg.contains("energy model (u, log scale)"));
        let empty = model_against_measured_svg(&[], "u");
        assert!(
            empty.starts_with("<svg") && !empty.contains("could not be drawn"),
            "{empty}"
        );
    }

    #[test]
    fn axes_are_padded_to_whole_decades_and_margins() {
        assert_eq!(log_axis_range([5.0].into_iter()), 2.0..10.0);
        assert_eq!(log_axis_range([1.0e5, 9.0e5].into_iter()), 5.0e4..2.0e6);
        assert_eq!(log_ticks(&(2.0..10.0)), vec![2.0, 5.0, 10.0]);
        assert_eq!(
            log_ticks(&(0.5..2.0e4)),
            vec![1.0, 10.0, 100.0, 1000.0, 10000.0]
        );
        assert_eq!(linear_axis_range([10.0].into_iter()), 9.5..10.5);
        assert_eq!(linear_axis_range([0.2, 0.3].into_iter()), 0.0..0.8);
        assert_eq!(short_scientific(1.0e6), "1e6");
        assert_eq!(short_scientific(2.5e6), "2.5e6");
        assert_eq!(short_scientific(0.00329), "3.29e-3");
    }
}
