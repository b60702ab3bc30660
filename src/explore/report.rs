//! The renderings of a sweep's results: a CSV of every point, and a Markdown report that answers
//! the question of Moons et al. (2017), "Minimum Energy Quantized Neural Networks": at a given
//! accuracy, which precision needs the least energy, and how much more does the 8-bit network
//! need? Every sentence of the report is computed from the points; the output is deterministic
//! (fixed number formats, profiles and targets in the caller's order, precisions ascending) and
//! never shows a NaN: a quantity that cannot be computed is said so in words or shown as "-".

use std::fmt::Write;

use super::pareto::{min_energy_at, pareto_front};
use super::point::{bits_label, precisions, units_of, PointResult};

/// The precision every other is compared against: the usual fixed-point baseline of inference
/// hardware.
const BASELINE_BITS: u32 = 8;

/// CSV: a header row, then one row per point in the given order, with one energy column per
/// profile (`energy_<profile>`, empty where the point was not measured). Accuracies have two
/// decimals, energies seven significant digits.
pub fn results_csv(points: &[PointResult], profiles: &[String]) -> String {
    let mut header: Vec<String> = [
        "id",
        "family",
        "bits",
        "width",
        "depth",
        "float_accuracy",
        "integer_accuracy",
        "weights",
        "macs",
        "model_bits",
    ]
    .map(String::from)
    .to_vec();
    header.extend(
        profiles
            .iter()
            .map(|profile| csv_field(&format!("energy_{profile}"))),
    );
    let mut text = header.join(",");
    text.push('\n');
    for point in points {
        let mut fields = vec![
            csv_field(&point.id),
            csv_field(&point.family),
            point.bits.to_string(),
            point.width.to_string(),
            point.depth.to_string(),
            format!("{:.2}", point.float_accuracy),
            format!("{:.2}", point.integer_accuracy),
            point.weights.to_string(),
            point.macs.to_string(),
            point.model_bits.to_string(),
        ];
        fields.extend(profiles.iter().map(|profile| {
            point
                .energy_under(profile)
                .map(|energy| format!("{energy:.6e}"))
                .unwrap_or_default()
        }));
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    text
}

/// A Markdown report: the title, `heading` (the caller's paragraph describing the sweep and the
/// command that ran it), the findings, then for each profile and each accuracy target (percent,
/// of the integer golden model) the minimum-energy network at every precision, the Pareto front
/// per profile, and every point.
pub fn report_markdown(
    points: &[PointResult],
    profiles: &[String],
    targets: &[f64],
    heading: &str,
) -> String {
    let mut text = String::from("# Minimum-energy quantized networks\n\n");
    let heading = heading.trim();
    if !heading.is_empty() {
        text.push_str(heading);
        text.push_str("\n\n");
    }
    if points.is_empty() {
        text.push_str(
            "The sweep is empty: it measured no point, so there is nothing to compare.\n",
        );
        return text;
    }
    let analyses: Vec<ProfileAnalysis> = profiles
        .iter()
        .map(|profile| ProfileAnalysis::new(points, profile, targets))
        .collect();
    write_findings(&mut text, points, &analyses, targets);
    write_targets(&mut text, points, &analyses, targets);
    write_pareto_fronts(&mut text, points, &analyses);
    write_all_results(&mut text, points, &analyses);
    text
}

/// Everything the report says about one profile, computed once.
struct ProfileAnalysis<'a> {
    profile: &'a str,
    /// "energy (16-bit MAC)", or "energy" when no point names the units.
    energy_title: String,
    /// Whether any point was measured under the profile.
    measured: bool,
    /// One per target, in the caller's order.
    outcomes: Vec<TargetOutcome>,
    front: Vec<usize>,
}

/// The answer at one accuracy target under one profile.
struct TargetOutcome {
    target: f64,
    /// For each precision of the sweep, ascending, the minimum-energy point of that precision
    /// that reaches the target.
    by_precision: Vec<(u32, Option<usize>)>,
    /// The minimum-energy point of all that reach the target.
    best: Option<usize>,
}

/// How the baseline precision compares with the minimum at one target.
enum Baseline {
    /// The sweep has no point at the baseline precision.
    Absent,
    /// No point at the baseline precision reaches the target.
    Unreached,
    /// The best baseline point and its energy over the minimum (`None` if that cannot be
    /// computed, e.g. a minimum of zero).
    Reached(usize, Option<f64>),
}

impl<'a> ProfileAnalysis<'a> {
    fn new(points: &[PointResult], profile: &'a str, targets: &[f64]) -> Self {
        let swept = precisions(points);
        let outcomes = targets
            .iter()
            .map(|&target| TargetOutcome {
                target,
                by_precision: swept
                    .iter()
                    .map(|&bits| (bits, min_energy_at(points, profile, target, Some(bits))))
                    .collect(),
                best: min_energy_at(points, profile, target, None),
            })
            .collect();
        let energy_title = match units_of(points, profile) {
            Some(units) => format!("energy ({units})"),
            None => "energy".to_string(),
        };
        ProfileAnalysis {
            profile,
            energy_title,
            measured: points
                .iter()
                .any(|point| point.energy_under(profile).is_some()),
            outcomes,
            front: pareto_front(points, profile),
        }
    }

    /// Energy of point `index` over the minimum energy at `outcome`'s target.
    fn ratio_to_best(
        &self,
        points: &[PointResult],
        outcome: &TargetOutcome,
        index: usize,
    ) -> Option<f64> {
        let energy = points[index].energy_under(self.profile)?;
        let minimum = points[outcome.best?].energy_under(self.profile)?;
        let ratio = energy / minimum;
        (minimum > 0.0 && ratio.is_finite()).then_some(ratio)
    }

    fn baseline(&self, points: &[PointResult], outcome: &TargetOutcome) -> Baseline {
        match outcome
            .by_precision
            .iter()
            .find(|(bits, _)| *bits == BASELINE_BITS)
        {
            None => Baseline::Absent,
            Some((_, None)) => Baseline::Unreached,
            Some((_, Some(index))) => {
                Baseline::Reached(*index, self.ratio_to_best(points, outcome, *index))
            }
        }
    }
}

/// One paragraph of plain sentences: what was swept, then for each profile which precision
/// wins at each target and the range of the baseline's energy over the minimum.
fn write_findings(
    text: &mut String,
    points: &[PointResult],
    analyses: &[ProfileAnalysis],
    targets: &[f64],
) {
    text.push_str("## Findings\n\n");
    let swept: Vec<String> = precisions(points)
        .iter()
        .map(|bits| bits.to_string())
        .collect();
    let mut sentences = vec![format!(
        "The sweep measured {} {} at {} bits.",
        points.len(),
        if points.len() == 1 { "point" } else { "points" },
        listing(&swept, "and")
    )];
    if !points.iter().any(|point| point.bits == BASELINE_BITS) {
        sentences.push(format!(
            "It has no {} network to compare with.",
            bit_adjective(BASELINE_BITS)
        ));
    }
    if targets.is_empty() {
        sentences.push("No accuracy target was given.".to_string());
    }
    if analyses.is_empty() {
        sentences.push("No energy profile was given.".to_string());
    }
    if !targets.is_empty() {
        for analysis in analyses {
            sentences.extend(profile_findings(points, analysis));
        }
    }
    text.push_str(&sentences.join(" "));
    text.push_str("\n\n");
}

/// The sentences of the findings about one profile.
fn profile_findings(points: &[PointResult], analysis: &ProfileAnalysis) -> Vec<String> {
    let profile = analysis.profile;
    if !analysis.measured {
        return vec![format!("No point was measured under profile `{profile}`.")];
    }
    let winners: Vec<String> = analysis
        .outcomes
        .iter()
        .filter_map(|outcome| {
            let best = &points[outcome.best?];
            Some(format!(
                "{} at {} % ({})",
                bit_adjective(best.bits),
                target_text(outcome.target),
                code(&best.id)
            ))
        })
        .collect();
    let unreached: Vec<String> = analysis
        .outcomes
        .iter()
        .filter(|outcome| outcome.best.is_none())
        .map(|outcome| format!("{} %", target_text(outcome.target)))
        .collect();
    let winning = format!(
        "Under profile `{profile}` the minimum-energy network is {}",
        listing(&winners, "and")
    );
    let unreachable = format!("no point reaches {}", listing(&unreached, "or"));
    let mut sentences = vec![match (winners.is_empty(), unreached.is_empty()) {
        (false, true) => format!("{winning}."),
        (false, false) => format!("{winning}; {unreachable}."),
        (true, _) => format!("Under profile `{profile}` {unreachable}."),
    }];
    if winners.is_empty() {
        return sentences;
    }
    let baselines: Vec<Baseline> = analysis
        .outcomes
        .iter()
        .filter(|outcome| outcome.best.is_some())
        .map(|outcome| analysis.baseline(points, outcome))
        .collect();
    let ratios: Vec<f64> = baselines
        .iter()
        .filter_map(|baseline| match baseline {
            Baseline::Reached(_, ratio) => *ratio,
            _ => None,
        })
        .collect();
    let baseline = bit_adjective(BASELINE_BITS);
    if let (Some(low), Some(high)) = (
        ratios.iter().copied().min_by(f64::total_cmp),
        ratios.iter().copied().max_by(f64::total_cmp),
    ) {
        let range = if ratio_text(low) == ratio_text(high) {
            ratio_text(low)
        } else {
            format!("{} to {}", ratio_text(low), ratio_text(high))
        };
        sentences.push(format!(
            "Under `{profile}` the best {baseline} network needs {range} the minimum energy at \
             the {} it reaches.",
            if ratios.len() == 1 {
                "target"
            } else {
                "targets"
            }
        ));
    } else if baselines
        .iter()
        .all(|baseline| matches!(baseline, Baseline::Unreached))
    {
        sentences.push(format!(
            "No {baseline} network reaches a target that another network reaches."
        ));
    }
    sentences
}

/// For each profile and target: the table of precisions, the minimum and the baseline's ratio.
fn write_targets(
    text: &mut String,
    points: &[PointResult],
    analyses: &[ProfileAnalysis],
    targets: &[f64],
) {
    text.push_str("## Minimum energy at each accuracy target\n\n");
    if targets.is_empty() {
        text.push_str("No accuracy target was given.\n\n");
        return;
    }
    let baseline_label = bit_adjective(BASELINE_BITS);
    for analysis in analyses {
        let _ = writeln!(text, "### Profile `{}`\n", analysis.profile);
        if !analysis.measured {
            text.push_str("No point was measured under this profile.\n\n");
            continue;
        }
        for outcome in &analysis.outcomes {
            let target = target_text(outcome.target);
            let _ = writeln!(text, "#### Target {target} %\n");
            let Some(best) = outcome.best else {
                let _ = writeln!(text, "No point reaches {target} %.\n");
                continue;
            };
            let _ = writeln!(
                text,
                "| bits | network | integer accuracy | {} | over the minimum |",
                analysis.energy_title
            );
            text.push_str("|---:|---|---:|---:|---:|\n");
            for (bits, chosen) in &outcome.by_precision {
                match chosen {
                    Some(index) => {
                        let point = &points[*index];
                        let _ = writeln!(
                            text,
                            "| {bits} | {} | {} % | {} | {} |",
                            code(&point.id),
                            fixed2(point.integer_accuracy),
                            energy_of(point, analysis.profile),
                            optional_ratio(analysis.ratio_to_best(points, outcome, *index))
                        );
                    }
                    None => {
                        let _ = writeln!(text, "| {bits} | none reaches the target | | | |");
                    }
                }
            }
            let winner = &points[best];
            let units = units_of(points, analysis.profile)
                .map(|units| format!(" {units}"))
                .unwrap_or_default();
            let _ = write!(
                text,
                "\nMinimum: {} ({}), {}{units}.",
                code(&winner.id),
                bits_label(winner.bits),
                energy_of(winner, analysis.profile),
            );
            let sentence = match analysis.baseline(points, outcome) {
                Baseline::Absent => format!("The sweep has no {baseline_label} network."),
                Baseline::Unreached => {
                    format!("No {baseline_label} network reaches {target} %.")
                }
                Baseline::Reached(index, Some(ratio)) => format!(
                    "The best {baseline_label} network, {}, needs {} that energy.",
                    code(&points[index].id),
                    ratio_text(ratio)
                ),
                Baseline::Reached(index, None) => format!(
                    "The best {baseline_label} network is {}; its ratio to the minimum cannot be computed.",
                    code(&points[index].id)
                ),
            };
            let _ = writeln!(text, " {sentence}\n");
        }
    }
}

fn write_pareto_fronts(text: &mut String, points: &[PointResult], analyses: &[ProfileAnalysis]) {
    text.push_str("## Pareto front\n\n");
    text.push_str(
        "The points that no other point beats in both test error and energy, by energy.\n\n",
    );
    for analysis in analyses {
        let _ = writeln!(text, "### Profile `{}`\n", analysis.profile);
        if analysis.front.is_empty() {
            text.push_str("No point was measured under this profile.\n\n");
            continue;
        }
        let _ = writeln!(
            text,
            "| network | bits | integer accuracy | test error | {} |",
            analysis.energy_title
        );
        text.push_str("|---|---:|---:|---:|---:|\n");
        for &index in &analysis.front {
            let point = &points[index];
            let _ = writeln!(
                text,
                "| {} | {} | {} % | {} % | {} |",
                code(&point.id),
                point.bits,
                fixed2(point.integer_accuracy),
                fixed2(point.test_error()),
                energy_of(point, analysis.profile)
            );
        }
        text.push('\n');
    }
}

fn write_all_results(text: &mut String, points: &[PointResult], analyses: &[ProfileAnalysis]) {
    text.push_str("## All results\n\n");
    text.push_str("| id | bits | width | depth | float accuracy | integer accuracy |");
    for analysis in analyses {
        let _ = write!(text, " {}, `{}` |", analysis.energy_title, analysis.profile);
    }
    text.push_str("\n|---|---:|---:|---:|---:|---:|");
    text.push_str(&"---:|".repeat(analyses.len()));
    text.push('\n');
    for point in points {
        let _ = write!(
            text,
            "| {} | {} | {} | {} | {} % | {} % |",
            code(&point.id),
            point.bits,
            point.width,
            point.depth,
            fixed2(point.float_accuracy),
            fixed2(point.integer_accuracy)
        );
        for analysis in analyses {
            let _ = write!(text, " {} |", energy_of(point, analysis.profile));
        }
        text.push('\n');
    }
}

/// "8-bit", as in "an 8-bit network".
fn bit_adjective(bits: u32) -> String {
    format!("{bits}-bit")
}

/// "a", "a and b", "a, b and c".
fn listing(items: &[String], conjunction: &str) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [first @ .., last] => format!("{} {conjunction} {last}", first.join(", ")),
    }
}

/// A target as given: one decimal when that is exact ("95.0"), else every digit it needs.
pub(crate) fn target_text(target: f64) -> String {
    let one_decimal = format!("{target:.1}");
    if one_decimal.parse::<f64>() == Ok(target) {
        one_decimal
    } else {
        target.to_string()
    }
}

/// The energy of `point` under `profile` with four significant digits, or "-".
fn energy_of(point: &PointResult, profile: &str) -> String {
    point
        .energy_under(profile)
        .map(|energy| format!("{energy:.3e}"))
        .unwrap_or_else(|| "-".to_string())
}

/// Two decimals, or "-" for a number that is not finite.
fn fixed2(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}")
    } else {
        "-".to_string()
    }
}

fn ratio_text(ratio: f64) -> String {
    format!("{ratio:.2}x")
}

fn optional_ratio(ratio: Option<f64>) -> String {
    ratio.map(ratio_text).unwrap_or_else(|| "-".to_string())
}

/// An id as inline code that is safe inside a Markdown table cell.
fn code(id: &str) -> String {
    format!("`{}`", id.replace('|', "\\|").replace('`', "'"))
}

/// A CSV field, quoted only when it holds a separator, a quote or a line break.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explore::point::tests::point;

    fn sweep() -> Vec<PointResult> {
        vec![
            point("mlp-q1-d1-w64", 1, 86.0, 1.0),
            point("mlp-q1-d2-w256", 1, 88.5, 3.0),
            point("mlp-q2-d1-w64", 2, 88.2, 2.5),
            point("mlp-q4-d1-w64", 4, 89.0, 5.0),
            point("mlp-q8-d1-w64", 8, 89.2, 10.0),
        ]
    }

    fn profiles() -> Vec<String> {
        vec!["p".to_string()]
    }

    #[test]
    fn csv_has_one_row_per_point_with_fixed_formats() {
        let csv = results_csv(&sweep()[..2], &["p".to_string(), "q".to_string()]);
        assert_eq!(
            csv,
            "id,family,bits,width,depth,float_accuracy,integer_accuracy,weights,macs,model_bits,\
             energy_p,energy_q\n\
             mlp-q1-d1-w64,mlp,1,64,1,86.00,86.00,100,100,100,1.000000e0,\n\
             mlp-q1-d2-w256,mlp,1,64,1,88.50,88.50,100,100,100,3.000000e0,\n"
        );
        assert_eq!(csv_field("a,b\"c"), "\"a,b\"\"c\"");
    }

    #[test]
    fn the_report_names_the_winner_and_the_baseline_ratio() {
        let report = report_markdown(&sweep(), &profiles(), &[88.0], "Swept by `qnnc explore`.");
        assert!(
            report.starts_with("# Minimum-energy quantized networks\n\nSwept by `qnnc explore`.\n")
        );
        // At 88 %: the 1-bit network costs 3, the 2-bit 2.5, the 8-bit 10.
        assert!(
            report.contains("| 1 | `mlp-q1-d2-w256` | 88.50 % | 3.000e0 | 1.20x |"),
            "{report}"
        );
        assert!(
            report.contains("| 2 | `mlp-q2-d1-w64` | 88.20 % | 2.500e0 | 1.00x |"),
            "{report}"
        );
        assert!(
            report.contains("Minimum: `mlp-q2-d1-w64` (2 bits), 2.500e0 u."),
            "{report}"
        );
        assert!(
            report.contains("The best 8-bit network, `mlp-q8-d1-w64`, needs 4.00x that energy.")
        );
        assert!(report.contains(
            "Under profile `p` the minimum-energy network is 2-bit at 88.0 % (`mlp-q2-d1-w64`)."
        ));
        assert!(report.contains("needs 4.00x the minimum energy at the target it reaches"));
        assert!(report.contains("## Pareto front"));
        assert!(!report.contains("NaN") && !report.contains("inf"));
    }

    #[test]
    fn findings_give_the_range_of_the_baseline_ratio() {
        let report = report_markdown(&sweep(), &profiles(), &[85.0, 88.0, 89.0], "");
        // 85 %: 1-bit at 1.0, 8-bit at 10 -> 10x; 88 %: 4x; 89 %: 4-bit at 5 -> 2x.
        assert!(
            report.contains("needs 2.00x to 10.00x the minimum energy at the targets it reaches"),
            "{report}"
        );
        assert!(report.contains(
            "network is 1-bit at 85.0 % (`mlp-q1-d1-w64`), 2-bit at 88.0 % (`mlp-q2-d1-w64`) \
             and 4-bit at 89.0 % (`mlp-q4-d1-w64`)."
        ));
        assert!(
            report.contains("| 1 | none reaches the target | | | |"),
            "{report}"
        );
    }

    #[test]
    fn a_target_nobody_reaches_gets_a_plain_sentence() {
        let report = report_markdown(&sweep(), &profiles(), &[95.0], "");
        assert!(report.contains("No point reaches 95.0 %."), "{report}");
        assert!(
            report.contains("Under profile `p` no point reaches 95.0 %."),
            "{report}"
        );
        assert!(!report.contains("NaN"));
    }

    #[test]
    fn an_unreached_baseline_and_a_missing_one_are_said_in_words() {
        let mut weak_baseline = sweep();
        weak_baseline[4].integer_accuracy = 87.0;
        let report = report_markdown(&weak_baseline, &profiles(), &[88.0], "");
        assert!(
            report.contains("No 8-bit network reaches 88.0 %."),
            "{report}"
        );
        assert!(report.contains("No 8-bit network reaches a target that another network reaches."));
        let without_baseline = &sweep()[..4];
        let report = report_markdown(without_baseline, &profiles(), &[88.0], "");
        assert!(
            report.contains("The sweep has no 8-bit network."),
            "{report}"
        );
        let report = report_markdown(&sweep(), &profiles(), &[89.25], "");
        assert!(report.contains("#### Target 89.25 %"), "{report}");
    }

    #[test]
    fn an_empty_sweep_says_so() {
        let report = report_markdown(&[], &profiles(), &[88.0], "heading");
        assert!(report.contains("The sweep is empty"), "{report}");
        assert!(!report.contains("## Pareto front"));
    }

    #[test]
    fn an_unmeasured_profile_is_said_in_words() {
        let report = report_markdown(&sweep(), &["absent".to_string()], &[88.0], "");
        assert!(
            report.contains("No point was measured under profile `absent`."),
            "{report}"
        );
    }

    #[test]
    fn the_report_is_deterministic() {
        let render = || report_markdown(&sweep(), &profiles(), &[85.0, 88.0], "h");
        assert_eq!(render(), render());
    }
}
