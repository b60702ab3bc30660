//! `fold-batch-norm`: replaces every MAC's float tail (bias, batch norm, activation quantizer)
//! by integer arithmetic on its accumulator, and the quantizer after every sum (average-pool
//! window sums, adds) by the same arithmetic on the sum, as after a MAC with neither bias nor
//! batch norm: `z = sum * s` (alpha = s, delta = 0), `s` the scale of the sum.
//!
//! For a MAC with accumulator `acc` (value `acc * s`), bias `b` and batch norm
//! `g = gamma / sqrt(var + eps)`, the quantizer's input is `z = alpha * acc + delta` with
//! `alpha = g * s` and `delta = g * (b - mean) + beta`.
//! - Activations of up to [`MAX_THRESHOLD_BITS`] bits become a multi-threshold: code k is
//!   reached when `z >= (k - 1/2) * s_a` (`z >= 0` for one bit; at the tie only for even k, as
//!   QONNX rounds half to even), with `s_a` the value of one
//!   activation code (the scale on the quantizer's output: `1 / (2^Q - 1)` for networks qnnc
//!   trained, whatever the quantizer said for imported ones), that is
//!   `acc >= ceil((t - delta) / alpha)` when alpha > 0, or `acc <= floor(...)` when alpha < 0
//!   (a negative gamma). Thresholds are clamped to the accumulator's range.
//! - Wider activations become `clamp(floor((M * acc + B) / 2^S), 0, 2^Q - 1)` with
//!   `M = round(alpha / s_a * 2^S)` and `B = round((delta / s_a + 1/2) * 2^S)`: 2^Q - 1
//!   thresholds would be too many.
//! - A tail that ends in the output becomes integer logits `floor(z * 2^F + 1/2)` by the same
//!   multiply-shift, with F = [`LOGIT_FRACTION_BITS`].
//!
//! Needs: shapes and accumulator precisions (`infer-accumulators`), trained weights and
//! statistics. Changes: removes batch-norm and quantize nodes, adds multi-threshold and
//! requantize nodes.

use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::Pass;
use crate::ir::ops::ACCUMULATING_LAYERS;
use crate::ir::{
    BatchNormParams, Graph, IrError, IrKind, Op, Precision, Requantization, Rounding, TensorType,
    ThresholdTable,
};
use crate::quant::act_max_code;

pub struct FoldBatchNorm;

/// Widest activation that gets a threshold table (2^4 - 1 = 15 thresholds a channel).
pub const MAX_THRESHOLD_BITS: u32 = 4;
/// Fractional bits of the integer logits.
pub const LOGIT_FRACTION_BITS: u32 = 8;
/// Most significant bits of a requantization multiplier.
const MULTIPLIER_BITS: u32 = 24;

/// `z = alpha * acc + delta` for one channel.
#[derive(Debug, Clone, Copy)]
struct Affine {
    alpha: f64,
    delta: f64,
}

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold-batch-norm"
    }

    fn description(&self) -> &'static str {
        "folds bias, batch norm and activation quantizer into integer thresholds or multiply-shift"
    }

    fn needs_weights(&self) -> bool {
        true
    }

    fn run(&self, graph: &mut Graph, file: &str) -> Result<bool, IrError> {
        let mut changed = false;
        let sums: Vec<NodeIndex> = graph
            .topological_order()
            .into_iter()
            .filter(|&i| graph.graph[i].op.rules().accumulates())
            .collect();
        for node in sums {
            changed |= fold_tail(graph, node, file)?;
        }
        for node in graph.topological_order() {
            if matches!(graph.graph[node].op, Op::BatchNorm(_) | Op::Quantize { .. }) {
                return Err(graph.error_of(
                    IrKind::Unsupported,
                    file,
                    node,
                    format!(
                        "{} does not follow a {ACCUMULATING_LAYERS} layer (or its batch norm) as its only reader, so it cannot be folded into integers",
                        graph.graph[node].op.name()
                    ),
                ));
            }
        }
        Ok(changed)
    }
}

fn fold_tail(graph: &mut Graph, mac: NodeIndex, file: &str) -> Result<bool, IrError> {
    let acc_type = graph.output_type(mac).expect("a MAC has an output");
    let (acc_min, acc_max) = acc_type.precision.code_range().ok_or_else(|| {
        graph.error(
            file,
            mac,
            "accumulator precision is not inferred (run infer-accumulators)",
        )
    })?;
    // Sums (average pools, adds) have no bias: z is the sum's value, sum * s.
    let (bias, channels) = match &graph.graph[mac].op {
        Op::Mac { bias, outputs, .. } => (bias.clone(), *outputs),
        _ => (None, acc_type.shape.channels),
    };
    // A tail read by several nodes is not folded; the check after folding names what is left.
    let Some(mut next) = graph.successor(mac) else {
        return Ok(false);
    };
    let mut batch_norm: Option<(NodeIndex, BatchNormParams)> = None;
    if let Op::BatchNorm(params) = &graph.graph[next].op {
        let Some(after) = graph.successor(next) else {
            return Ok(false);
        };
        batch_norm = Some((next, params.clone()));
        next = after;
    }
    let affine: Vec<Affine> = (0..channels)
        .map(|c| {
            let b = bias.as_ref().map_or(0.0, |b| b[c] as f64);
            let (g, mean, beta) = match &batch_norm {
                Some((_, bn)) => (
                    bn.gamma[c] as f64 / (bn.var[c] as f64 + bn.epsilon as f64).sqrt(),
                    bn.mean[c] as f64,
                    bn.beta[c] as f64,
                ),
                None => (1.0, 0.0, 0.0),
            };
            Affine {
                alpha: g * acc_type.scale,
                delta: g * (b - mean) + beta,
            }
        })
        .collect();
    let name_of = |graph: &Graph, node: NodeIndex| graph.graph[node].name.clone();
    let (op, out, replaced) = match graph.graph[next].op {
        Op::Quantize {
            bits,
            truncation,
            narrow,
        } => {
            let out = TensorType {
                shape: acc_type.shape,
                ..graph.output_type(next).expect("a quantizer has an output")
            };
            let full_max = act_max_code(bits) as i64;
            // A narrow range never reaches the top code.
            let max_code = full_max - narrow as i64;
            let op = if bits <= MAX_THRESHOLD_BITS {
                let levels = match truncation {
                    None if bits == 1 => vec![Level {
                        z: 0.0,
                        strict: false,
                    }],
                    None => (1..=full_max)
                        .map(|k| Level::rounded((k <= max_code).then_some(k), out.scale))
                        .collect(),
                    Some(t) => t
                        .first_inputs(max_code)
                        .into_iter()
                        .map(|q| Level::rounded(q, t.input_scale))
                        .collect(),
                };
                Op::MultiThreshold(thresholds(&affine, &levels, acc_min, acc_max))
            } else {
                // code = floor(z / step + offset), clamped: the rounding of the quantizer, and
                // of a truncation by 2^k after it (floor(q / 2^k) with q = floor(z / s + 1/2)
                // is floor(z / (s 2^k) + 2^-(k+1)), and so on). Exact ties round up here.
                let (step, offset, max) = match truncation {
                    None => (out.scale, 0.5, max_code),
                    Some(t) => {
                        let n = (1u64 << t.shift) as f64;
                        let offset = match t.rounding {
                            _ if t.shift == 0 => 0.5,
                            Rounding::Floor => 0.5 / n,
                            Rounding::Ceil => 1.0 - 0.5 / n,
                            // Half of its input codes are ties, which a floor cannot round
                            // to even.
                            Rounding::Round => {
                                return Err(graph.error_of(
                                    IrKind::Unsupported,
                                    file,
                                    next,
                                    format!(
                                        "a truncation that rounds half to even needs thresholds, which go up to {MAX_THRESHOLD_BITS} output bits, not {bits}"
                                    ),
                                ))
                            }
                        };
                        (t.input_scale * n, offset, t.code(t.input_max(), max_code))
                    }
                };
                let scaled: Vec<Affine> = affine
                    .iter()
                    .map(|a| Affine {
                        alpha: a.alpha / step,
                        delta: a.delta / step + offset,
                    })
                    .collect();
                let clamp = Some((0, max));
                Op::Requantize(
                    requantization(&scaled, clamp, acc_min, acc_max)
                        .map_err(|m| graph.error(file, mac, m))?,
                )
            };
            (op, out, vec![next])
        }
        Op::Output if batch_norm.is_some() || bias.is_some() => {
            let unit = (1u64 << LOGIT_FRACTION_BITS) as f64;
            let scaled: Vec<Affine> = affine
                .iter()
                .map(|a| Affine {
                    alpha: a.alpha * unit,
                    delta: a.delta * unit + 0.5,
                })
                .collect();
            let r = requantization(&scaled, None, acc_min, acc_max)
                .map_err(|m| graph.error(file, mac, m))?;
            let (lo, hi) = requantized_range(&r, acc_min, acc_max);
            let out = TensorType {
                shape: acc_type.shape,
                precision: Precision::signed_for_range(lo, hi),
                scale: 1.0 / unit,
            };
            (Op::Requantize(r), out, Vec::new())
        }
        _ => return Ok(false),
    };
    // The new node takes the place of the batch norm and the quantizer (or sits before the
    // output): MAC -> new node -> what read them, each at the input it read them.
    let label = match (&batch_norm, replaced.first()) {
        (_, Some(&quantizer)) => name_of(graph, quantizer),
        (Some((bn, _)), None) => name_of(graph, *bn),
        (None, None) => format!("{}_logits", name_of(graph, mac)),
    };
    // The node whose output the new node takes over: the quantizer, or what the output read.
    let last = replaced
        .first()
        .copied()
        .or(batch_norm.as_ref().map(|(bn, _)| *bn))
        .unwrap_or(mac);
    let mut readers: Vec<(NodeIndex, usize, TensorType)> = graph
        .graph
        .edges_directed(last, Direction::Outgoing)
        .filter(|e| !replaced.is_empty() || e.target() == next)
        .map(|e| (e.target(), e.weight().slot, e.weight().ty))
        .collect();
    readers.sort_by_key(|&(target, slot, _)| (target, slot));
    if let Some((bn, _)) = batch_norm {
        graph.graph.remove_node(bn);
    }
    for &node in &replaced {
        graph.graph.remove_node(node);
    }
    if replaced.is_empty() {
        while let Some(edge) = graph.graph.find_edge(mac, next) {
            graph.graph.remove_edge(edge);
        }
    }
    let folded = graph.graph.add_node(crate::ir::Node { name: label, op });
    graph.connect(mac, folded, 0, acc_type);
    for (reader, slot, ty) in readers {
        let ty = match replaced.first() {
            Some(_) => TensorType {
                shape: ty.shape,
                ..out
            },
            None => out,
        };
        graph.connect(folded, reader, slot, ty);
    }
    Ok(true)
}

/// Where the quantizer's input `z` reaches an output code: from `z` on, or only above it.
#[derive(Debug, Clone, Copy)]
struct Level {
    z: f64,
    strict: bool,
}

impl Level {
    /// The level of `round(z / step) >= q`, rounding half to even as QONNX's quantizers do:
    /// from half a step below q on, the tie included only when q is even. Never for `None`.
    fn rounded(q: Option<i64>, step: f64) -> Level {
        match q {
            Some(q) => Level {
                z: (q as f64 - 0.5) * step,
                strict: q % 2 != 0,
            },
            None => Level {
                z: f64::INFINITY,
                strict: false,
            },
        }
    }
}

/// For each channel, the accumulators from which the quantizer's input `z` reaches each of
/// `levels` (ascending; code k is reached from `levels[k - 1]` on).
fn thresholds(affine: &[Affine], levels: &[Level], acc_min: i64, acc_max: i64) -> ThresholdTable {
    let mut table = ThresholdTable {
        thresholds: Vec::with_capacity(affine.len()),
        descending: Vec::with_capacity(affine.len()),
    };
    for a in affine {
        let descending = a.alpha < 0.0;
        let row = levels
            .iter()
            .map(|level| {
                let t = level.z;
                if a.alpha == 0.0 {
                    // z is the constant delta: every accumulator reaches t, or none does.
                    let reached = if level.strict {
                        a.delta > t
                    } else {
                        a.delta >= t
                    };
                    return if reached { acc_min } else { acc_max + 1 };
                }
                // acc >= x (ascending) or acc <= x (descending), or strictly.
                let x = (t - a.delta) / a.alpha;
                match (descending, level.strict) {
                    (false, false) => clamp_to_i64(x.ceil(), acc_min, acc_max + 1),
                    (false, true) => clamp_to_i64(x.floor() + 1.0, acc_min, acc_max + 1),
                    (true, false) => clamp_to_i64(x.floor(), acc_min - 1, acc_max),
                    (true, true) => clamp_to_i64(x.ceil() - 1.0, acc_min - 1, acc_max),
                }
            })
            .collect();
        table.thresholds.push(row);
        table.descending.push(descending);
    }
    table
}

fn clamp_to_i64(x: f64, lo: i64, hi: i64) -> i64 {
    if x.is_nan() {
        hi
    } else if x <= lo as f64 {
        lo
    } else if x >= hi as f64 {
        hi
    } else {
        x as i64
    }
}

/// `floor(alpha * acc + delta)` as `(M * acc + B) >> S`, with one shift for all channels.
fn requantization(
    affine: &[Affine],
    clamp: Option<(i64, i64)>,
    acc_min: i64,
    acc_max: i64,
) -> Result<Requantization, String> {
    let acc_bits = Precision::signed_for_range(acc_min, acc_max).storage_bits();
    // The product M * acc must fit 63 bits: fewer multiplier bits for wide accumulators.
    let multiplier_bits = MULTIPLIER_BITS.min(62u32.saturating_sub(acc_bits)).max(2);
    let largest = affine.iter().map(|a| a.alpha.abs()).fold(0.0, f64::max);
    let shift = if largest > 0.0 {
        (multiplier_bits as f64 - 1.0 - largest.log2().ceil()).clamp(0.0, 62.0) as u32
    } else {
        0
    };
    let unit = (1u64 << shift) as f64;
    let to_i64 = |x: f64, what: &str| {
        let r = x.round();
        if r.is_finite() && r.abs() < 9.0e18 {
            Ok(r as i64)
        } else {
            Err(format!("requantization {what} {x} does not fit 64 bits"))
        }
    };
    let mut r = Requantization {
        multiplier: Vec::with_capacity(affine.len()),
        offset: Vec::with_capacity(affine.len()),
        shift,
        clamp,
    };
    for a in affine {
        r.multiplier.push(to_i64(a.alpha * unit, "multiplier")?);
        r.offset.push(to_i64(a.delta * unit, "offset")?);
    }
    for (&m, &b) in r.multiplier.iter().zip(&r.offset) {
        for acc in [acc_min, acc_max] {
            if acc.checked_mul(m).and_then(|p| p.checked_add(b)).is_none() {
                return Err(format!(
                    "requantization of accumulators {acc_min}..={acc_max} overflows 64 bits"
                ));
            }
        }
    }
    Ok(r)
}

/// The smallest and largest output of a requantization over an accumulator range.
pub fn requantized_range(r: &Requantization, acc_min: i64, acc_max: i64) -> (i64, i64) {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for (&m, &b) in r.multiplier.iter().zip(&r.offset) {
        for acc in [acc_min, acc_max] {
            let v = (acc * m + b) >> r.shift;
            let v = match r.clamp {
                Some((min, max)) => v.clamp(min, max),
                None => v,
            };
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code the thresholds give an accumulator.
    fn code(table: &ThresholdTable, acc: i64) -> i64 {
        let (row, descending) = (&table.thresholds[0], table.descending[0]);
        row.iter()
            .filter(|&&t| if descending { acc <= t } else { acc >= t })
            .count() as i64
    }

    #[test]
    fn thresholds_round_half_to_even_as_qonnx_does() {
        // Steps of 1/2 and 1/4 make exact ties; both signs of alpha, and offsets.
        for (alpha, delta) in [
            (0.5, 0.0),
            (0.25, 0.5),
            (-0.5, 3.0),
            (0.5, -0.25),
            (-0.25, 0.0),
        ] {
            for bits in [2, 3, 4] {
                let max = act_max_code(bits) as i64;
                let levels: Vec<Level> = (1..=max).map(|k| Level::rounded(Some(k), 1.0)).collect();
                let table = thresholds(&[Affine { alpha, delta }], &levels, -64, 64);
                for acc in -64..=64 {
                    let z: f64 = alpha * acc as f64 + delta;
                    let expected = z.round_ties_even().clamp(0.0, max as f64) as i64;
                    assert_eq!(
                        code(&table, acc),
                        expected,
                        "alpha {alpha} delta {delta} acc {acc}"
                    );
                }
            }
        }
    }

    #[test]
    fn truncated_thresholds_follow_the_truncation() {
        for rounding in [Rounding::Floor, Rounding::Round, Rounding::Ceil] {
            let t = crate::ir::Truncation {
                input_bits: 4,
                input_scale: 1.0,
                shift: 2,
                rounding,
            };
            let levels: Vec<Level> = t
                .first_inputs(3)
                .into_iter()
                .map(|q| Level::rounded(q, 1.0))
                .collect();
            let table = thresholds(
                &[Affine {
                    alpha: 0.5,
                    delta: 0.0,
                }],
                &levels,
                -64,
                64,
            );
            for acc in -64..=64 {
                let q = (0.5 * acc as f64).round_ties_even().clamp(0.0, 15.0) as i64;
                assert_eq!(code(&table, acc), t.code(q, 3), "{rounding:?} acc {acc}");
            }
        }
    }
}
