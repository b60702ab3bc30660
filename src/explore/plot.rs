//! The figures of a sweep, as SVG text: test error against energy under one profile (one colour
//! per precision, the Pareto front drawn through its points), and the split of the chosen
//! networks' energy into computation (E_C), weight accesses (E_W) and activation accesses (E_A).
//! Drawn with plotters' SVG backend into a String: text is written as `<text>` elements, so no
//! font file is read, and the same points always give the same bytes. Bad data (no point, one
//! point, equal energies, energies that a log axis cannot show) gives a readable figure, never a
//! panic.

use std::error::Error;
use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::pareto::pareto_front;
use super::point::{bits_label, precisions, units_of, PointResult};

const FONT: &str = "sans-serif";
/// The colour of 1 to 16 bits: distinct hues, the most distinct for the usual 1, 2, 4, 8 and 16
/// bits, none of them the black of the Pareto front.
const PRECISION_COLOURS: [RGBColor; 16] = [
    RGBColor(204, 51, 17),   // 1
    RGBColor(0, 119, 187),   // 2
    RGBColor(238, 119, 51),  // 3
    RGBColor(0, 153, 136),   // 4
    RGBColor(153, 153, 51),  // 5
    RGBColor(51, 187, 238),  // 6
    RGBColor(102, 51, 0),    // 7
    RGBColor(170, 51, 119),  // 8
    RGBColor(68, 170, 119),  // 9
    RGBColor(136, 34, 85),   // 10
    RGBColor(221, 170, 51),  // 11
    RGBColor(51, 34, 136),   // 12
    RGBColor(238, 102, 119), // 13
    RGBColor(17, 119, 51),   // 14
    RGBColor(187, 187, 187), // 15
    RGBColor(68, 68, 68),    // 16
];
const SCATTER_SIZE: (u32, u32) = (900, 600);
const BREAKDOWN_WIDTH: u32 = 900;
/// Height of one bar of the breakdown, and of everything around the bars.
const BREAKDOWN_ROW_HEIGHT: u32 = 36;
const BREAKDOWN_FRAME_HEIGHT: u32 = 150;
/// Empty rows above the bars of the breakdown, where its legend goes.
const LEGEND_ROWS: usize = 2;
/// Room a log axis leaves beside the extreme points before rounding out to a 1-2-5 step.
const LOG_AXIS_PADDING: f64 = 1.2;
/// Multiples of a power of ten that bound and label a log axis.
const LOG_STEPS: [f64; 3] = [1.0, 2.0, 5.0];
/// Beyond this many decades a log axis labels the powers of ten only.
const MAX_DECADES_WITH_STEPS: f64 = 3.0;

type Drawing<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawOutcome = Result<(), Box<dyn Error>>;

/// Scatter of test error (%) against the energy of one inference under `profile` (log scale),
/// one colour and legend entry per precision, with the Pareto front drawn as a line through its
/// points, each ringed. Points with no positive energy under the profile cannot sit on a log axis
/// and are left out.
pub fn error_vs_energy_svg(points: &[PointResult], profile: &str) -> String {
    let plotted: Vec<(&PointResult, (f64, f64))> = points
        .iter()
        .filter_map(|point| Some((point, log_plottable(point, profile)?)))
        .collect();
    let front: Vec<(f64, f64)> = pareto_front(points, profile)
        .into_iter()
        .filter_map(|index| log_plottable(&points[index], profile))
        .collect();
    let energy_axis = log_axis_range(plotted.iter().map(|(_, (_, energy))| *energy));
    let error_axis = linear_axis_range(plotted.iter().map(|(_, (error, _))| *error));
    let energy_title = match units_of(points, profile) {
        Some(units) => format!("energy of one inference ({units}, log scale)"),
        None => "energy of one inference (log scale)".to_string(),
    };
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
        if plotted.is_empty() {
            let (x_range, y_range) = (chart.x_range(), chart.y_range());
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
        for bits in precisions(plotted.iter().map(|(point, _)| *point)) {
            let colour = precision_colour(bits);
            chart
                .draw_series(plotted.iter().filter(|(point, _)| point.bits == bits).map(
                    |(_, (error, energy))| Circle::new((*energy, *error), 4, colour.filled()),
                ))?
                .label(bits_label(bits))
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()));
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
                .map(|point| Circle::new(as_xy(point), 7, BLACK.stroke_width(1))),
        )?;
        draw_legend(&mut chart)
    })
}

/// For each given point, top to bottom in the given order, a horizontal bar of its energy under
/// `profile` split into E_C, E_W and E_A (each summed over the layers), labelled by the point's
/// id, with the total at its end. A linear axis, so that the lengths of the stacked parts compare
/// truly; a point whose layers were not measured gets a note instead of a bar.
pub fn energy_breakdown_svg(points: &[&PointResult], profile: &str) -> String {
    let bar_rows = points.len().max(1);
    // Empty rows above the bars keep the legend clear of them.
    let rows = bar_rows + LEGEND_ROWS;
    let splits: Vec<_> = points
        .iter()
        .map(|point| point.energy_split(profile))
        .collect();
    let longest_total = splits
        .iter()
        .flatten()
        .map(|split| split.total())
        .filter(|total| total.is_finite() && *total > 0.0)
        .max_by(f64::total_cmp)
        .unwrap_or(1.0);
    let ids: Vec<&str> = points.iter().map(|point| point.id.as_str()).collect();
    let id_chars = ids.iter().map(|id| id.chars().count()).max().unwrap_or(0);
    let id_area = u32::try_from(8 * id_chars + 20)
        .unwrap_or(u32::MAX)
        .clamp(60, 400);
    let height = BREAKDOWN_FRAME_HEIGHT.saturating_add(
        BREAKDOWN_ROW_HEIGHT.saturating_mul(u32::try_from(rows).unwrap_or(u32::MAX)),
    );
    let energy_title = match units_of(points.iter().copied(), profile) {
        Some(units) => format!("energy of one inference ({units})"),
        None => "energy of one inference".to_string(),
    };
    // Row 0 is drawn at the bottom; the first point belongs at the top of the bars. The same
    // map turns a point's index into its row and a row back into the point's index.
    let flip = |index_or_row: usize| bar_rows.checked_sub(index_or_row + 1);
    let parts = [
        ("E_C, computation", RGBColor(68, 119, 170)),
        ("E_W, weight accesses", RGBColor(221, 170, 51)),
        ("E_A, activation accesses", RGBColor(187, 85, 102)),
    ];
    render_svg((BREAKDOWN_WIDTH, height), |root| {
        // Room past the longest bar for its total.
        let energy_axis = 0.0..longest_total * 1.2;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Energy of one inference by kind, profile {profile}"),
                (FONT, 22),
            )
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
        if points.is_empty() {
            chart.draw_series(std::iter::once(Text::new(
                "no network to show",
                (longest_total * 0.6, SegmentValue::CenterOf(0)),
                centred_text(18, HPos::Center),
            )))?;
            return Ok(());
        }
        for (part, (name, colour)) in parts.iter().enumerate() {
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
            let colour = *colour;
            chart.draw_series(bars)?.label(*name).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
            });
        }
        let note_style = centred_text(14, HPos::Left);
        chart.draw_series(splits.iter().enumerate().filter_map(|(index, split)| {
            let row = flip(index)?;
            let (at, note) = match split {
                Some(split) => (
                    split.total(),
                    format!(" {}", short_scientific(split.total())),
                ),
                None => (0.0, format!(" not measured under {profile}")),
            };
            Some(Text::new(
                note,
                (at, SegmentValue::CenterOf(row)),
                note_style.clone(),
            ))
        }))?;
        draw_legend(&mut chart)
    })
}

/// Draws on a white canvas of `size` pixels and returns the SVG; should plotters report an
/// error, a small SVG that states it instead.
/// The series legend both plots draw, in their upper right corner.
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
    let index = usize::try_from(bits).map_or(0, |bits| bits.saturating_sub(1));
    PRECISION_COLOURS
        .get(index)
        .copied()
        .unwrap_or(RGBColor(119, 119, 119))
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

    fn sweep() -> Vec<PointResult> {
        vec![
            point("mlp-q1-d1-w64", 1, 86.0, 1.0e5),
            point("mlp-q1-d2-w256", 1, 88.5, 3.0e5),
            point("mlp-q2-d1-w64", 2, 88.2, 2.5e5),
            point("mlp-q4-d1-w64", 4, 89.0, 5.0e5),
            point("mlp-q8-d1-w64", 8, 89.2, 1.0e6),
        ]
    }

    #[test]
    fn the_scatter_names_the_profile_and_every_precision() {
        let svg = error_vs_energy_svg(&sweep(), "p");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("profile p"));
        for label in ["1 bit", "2 bits", "4 bits", "8 bits", "Pareto front"] {
            assert_eq!(text_elements(&svg, label), 1, "{label}");
        }
        assert!(svg.contains("energy of one inference (u, log scale)"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn degenerate_sweeps_still_draw() {
        let single = vec![point("only", 4, 90.0, 7.0)];
        let equal = vec![point("a", 1, 80.0, 5.0), point("b", 2, 90.0, 5.0)];
        let mut unmeasured = vec![point("zero", 1, 80.0, 0.0), point("nan", 2, 80.0, 1.0)];
        unmeasured[1].energy.insert("p".into(), f64::NAN);
        for points in [single, equal, unmeasured, Vec::new()] {
            let svg = error_vs_energy_svg(&points, "p");
            assert!(
                svg.starts_with("<svg") && !svg.contains("could not be drawn"),
                "{svg}"
            );
        }
        assert!(error_vs_energy_svg(&[], "p").contains("no point was measured under profile p"));
    }

    #[test]
    fn the_breakdown_labels_every_point_and_part() {
        let points = sweep();
        let mut chosen: Vec<&PointResult> = points.iter().take(3).collect();
        let mut unmeasured = point("mlp-q16-d1-w64", 16, 90.0, 1.0);
        unmeasured.layers.clear();
        chosen.push(&unmeasured);
        let svg = energy_breakdown_svg(&chosen, "p");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("profile p"));
        for label in [
            "mlp-q1-d1-w64",
            "mlp-q1-d2-w256",
            "mlp-q2-d1-w64",
            "mlp-q16-d1-w64",
        ] {
            assert_eq!(text_elements(&svg, label), 1, "{label}");
        }
        for part in [
            "E_C, computation",
            "E_W, weight accesses",
            "E_A, activation accesses",
        ] {
            assert!(svg.contains(part), "{part}");
        }
        assert!(svg.contains("not measured under p"));
        let empty = energy_breakdown_svg(&[], "p");
        assert!(empty.starts_with("<svg") && empty.contains("no network to show"));
    }

    #[test]
    fn the_same_points_give_the_same_bytes() {
        let points = sweep();
        assert_eq!(
            error_vs_energy_svg(&points, "p"),
            error_vs_energy_svg(&points, "p")
        );
        let chosen: Vec<&PointResult> = points.iter().collect();
        assert_eq!(
            energy_breakdown_svg(&chosen, "p"),
            energy_breakdown_svg(&chosen, "p")
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
