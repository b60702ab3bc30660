//! Scheduling: maps a lowered graph onto the PE array. Every MAC layer, with the threshold or
//! requantization and the max-pool that follow it, becomes one hardware layer: its tiling
//! (G = ceil(Cout/PE) output groups, T = ceil(K/SIMD) chunks of the receptive field), its place
//! in the weight and parameter memories, and its cycle count, predicted exactly as the
//! controller in `templates/verilog/qnnc_core.v` runs it.
//!
//! An analysis: it reads the graph and returns a report.

use std::fmt;

use serde::Serialize;

use petgraph::stable_graph::NodeIndex;

use crate::ir::passes::infer_accumulators;
use crate::ir::{Graph, IrError, Op, Precision, Requantization, ThresholdTable, Weights};
use crate::spec::Shape;

/// The size of the PE array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArrayConfig {
    pub pe: usize,
    pub simd: usize,
}

/// What turns a layer's accumulators into its outputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Post {
    Threshold {
        #[serde(skip)]
        table: ThresholdTable,
        bipolar: bool,
    },
    Requantize {
        #[serde(skip)]
        requantization: Requantization,
    },
    /// The accumulators are the logits.
    Raw,
}

/// One hardware layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSchedule {
    pub name: String,
    /// The IR node whose output the layer stores: its activation, or the max-pool after it.
    pub output_node: String,
    pub input: Shape,
    /// Before any pooling.
    pub output: Shape,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub fan_in: usize,
    pub chunks: usize,
    pub groups: usize,
    /// Non-overlapping max-pool window and the pooled output.
    pub pool: Option<(usize, Shape)>,
    pub in_bipolar: bool,
    pub weight_bipolar: bool,
    pub weight_bits: u32,
    pub acc_bits: u32,
    pub out_bits: u32,
    pub post: Post,
    pub last: bool,
    /// First word of this layer in the weight memory and in its parameter memory.
    pub weight_base: usize,
    pub param_base: usize,
    pub macs: u64,
    /// ceil(Cout/PE) * ceil(K/SIMD) * Hout * Wout.
    pub ideal_cycles: u64,
    /// What the controller takes, loading and pipeline included.
    pub cycles: u64,
    #[serde(skip)]
    pub weights: Weights,
}

impl LayerSchedule {
    /// The shape this layer writes (pooled if it pools).
    pub fn stored(&self) -> Shape {
        self.pool.map_or(self.output, |(_, s)| s)
    }

    pub fn utilization(&self, config: ArrayConfig) -> f64 {
        self.macs as f64 / (self.cycles as f64 * (config.pe * config.simd) as f64)
    }
}

/// The whole network on the array.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub config: ArrayConfig,
    pub input: Shape,
    pub classes: usize,
    pub layers: Vec<LayerSchedule>,
    /// One cycle a pixel.
    pub input_cycles: u64,
    pub total_cycles: u64,
    pub macs: u64,
}

impl Schedule {
    /// Utilization of the PE array over the layers (input streaming excluded).
    pub fn utilization(&self) -> f64 {
        let cycles: u64 = self.layers.iter().map(|l| l.cycles).sum();
        self.macs as f64 / (cycles as f64 * (self.config.pe * self.config.simd) as f64)
    }
}

/// Cycles of the controller's fixed steps: reading the descriptor, and the post-processing
/// and write stages after the last dot product.
pub const LAYER_START_CYCLES: u64 = 1;
pub const DRAIN_CYCLES: u64 = 2;

/// Maps a lowered graph onto a PE array of `config`.
pub fn schedule(graph: &Graph, config: ArrayConfig, file: &str) -> Result<Schedule, IrError> {
    let fail = |node: &str, message: String| IrError {
        file: file.to_string(),
        node: node.to_string(),
        message,
    };
    if config.pe == 0 {
        return Err(fail("--pe", "must be at least 1".into()));
    }
    if config.simd == 0 || !config.simd.is_power_of_two() {
        return Err(fail(
            "--simd",
            format!("{} must be a power of two", config.simd),
        ));
    }
    if config.pe > config.simd {
        return Err(fail(
            "--pe",
            format!(
                "{} must not exceed --simd {} (one write per bank a cycle)",
                config.pe, config.simd
            ),
        ));
    }
    crate::ir::verify::verify_lowered(graph, file)?;
    let chain = graph.chain();
    let input = graph.output_type(chain[0]).expect("typed").shape;
    let mut layers: Vec<LayerSchedule> = Vec::new();
    let (mut weight_base, mut threshold_base, mut requant_base) = (0, 0, 0);
    let mut k = 1;
    while k < chain.len() {
        let node = chain[k];
        let name = graph.graph[node].name.clone();
        match &graph.graph[node].op {
            Op::Flatten => {
                k += 1;
                continue;
            }
            Op::Output => break,
            Op::Mac {
                kernel,
                stride,
                padding,
                weight_precision,
                weights: Some(weights),
                ..
            } => {
                let in_type = graph.input_type(node).expect("typed");
                let acc = graph.output_type(node).expect("typed");
                let mut next = k + 1;
                let mut output_node = name.clone();
                let (post, out_bits, last) = match &graph.graph[chain[next]].op {
                    Op::MultiThreshold(table) => {
                        let out = graph.output_type(chain[next]).expect("typed");
                        output_node.clone_from(&graph.graph[chain[next]].name);
                        next += 1;
                        let bipolar = out.precision == Precision::Bipolar;
                        (Post::Threshold { table: table.clone(), bipolar }, out.precision.storage_bits(), false)
                    }
                    Op::Requantize(r) => {
                        let out = graph.output_type(chain[next]).expect("typed");
                        output_node.clone_from(&graph.graph[chain[next]].name);
                        next += 1;
                        let last = matches!(graph.graph[chain[next]].op, Op::Output);
                        if r.clamp.is_none() && !last {
                            return Err(fail(&name, "an unclamped requantization must produce the logits".into()));
                        }
                        (Post::Requantize { requantization: r.clone() }, out.precision.storage_bits(), last)
                    }
                    Op::Output => (Post::Raw, acc.precision.storage_bits(), true),
                    other => {
                        return Err(fail(
                            &name,
                            format!("the RTL needs a threshold, requantization or the output after a MAC, not {}", other.name()),
                        ))
                    }
                };
                let mut pool = None;
                if let Op::MaxPool {
                    size,
                    stride: pool_stride,
                } = graph.graph[chain[next]].op
                {
                    if size != pool_stride {
                        return Err(fail(
                            &graph.graph[chain[next]].name,
                            format!("the RTL pools non-overlapping windows only (size {size}, stride {pool_stride})"),
                        ));
                    }
                    if last {
                        return Err(fail(
                            &graph.graph[chain[next]].name,
                            "cannot pool the logits".into(),
                        ));
                    }
                    pool = Some((size, graph.output_type(chain[next]).expect("typed").shape));
                    output_node.clone_from(&graph.graph[chain[next]].name);
                    next += 1;
                }
                let output = acc.shape;
                let fan_in = kernel * kernel * in_type.shape.channels;
                check_rtl_contract(graph, &chain[k..next], fan_in, file)?;
                let chunks = fan_in.div_ceil(config.simd);
                let groups = output.channels.div_ceil(config.pe);
                let param_base = match post {
                    Post::Threshold { .. } => {
                        threshold_base += groups;
                        threshold_base - groups
                    }
                    Post::Requantize { .. } => {
                        requant_base += groups;
                        requant_base - groups
                    }
                    Post::Raw => 0,
                };
                let mut layer = LayerSchedule {
                    name,
                    output_node,
                    input: in_type.shape,
                    output,
                    kernel: *kernel,
                    stride: *stride,
                    padding: *padding,
                    fan_in,
                    chunks,
                    groups,
                    pool,
                    in_bipolar: in_type.precision == Precision::Bipolar,
                    weight_bipolar: *weight_precision == Precision::Bipolar,
                    weight_bits: weight_precision.storage_bits(),
                    acc_bits: acc.precision.storage_bits(),
                    out_bits,
                    post,
                    last,
                    weight_base,
                    param_base,
                    macs: (output.len() * fan_in) as u64,
                    ideal_cycles: (groups * chunks * output.height * output.width) as u64,
                    cycles: 0,
                    weights: weights.clone(),
                };
                layer.cycles = predicted_cycles(&layer, config);
                weight_base += groups * chunks;
                layers.push(layer);
                k = next;
            }
            Op::Mac { weights: None, .. } => {
                return Err(fail(
                    &name,
                    "has no trained weights (this graph comes from a spec)".into(),
                ))
            }
            other => {
                return Err(fail(
                    &name,
                    format!(
                        "the RTL has no place for {} here (it follows a MAC's activation)",
                        other.name()
                    ),
                ))
            }
        }
    }
    match layers.last() {
        Some(l) if l.last => {}
        _ => {
            return Err(fail(
                "logits",
                "the network must end in a MAC layer that gives the logits".into(),
            ))
        }
    }
    let classes = layers.last().map_or(0, |l| l.output.channels);
    let input_cycles = input.len() as u64;
    let total_cycles = input_cycles + layers.iter().map(|l| l.cycles).sum::<u64>();
    let macs = layers.iter().map(|l| l.macs).sum();
    Ok(Schedule {
        config,
        input,
        classes,
        layers,
        input_cycles,
        total_cycles,
        macs,
    })
}

/// What the generated RTL assumes of a MAC and what follows it, beyond what `verify` checks
/// for every graph: operand encodings it decodes, accumulators wide enough for the worst case,
/// thresholds and clamps inside the ranges the memories and buffers hold.
fn check_rtl_contract(
    graph: &Graph,
    nodes: &[NodeIndex],
    fan_in: usize,
    file: &str,
) -> Result<(), IrError> {
    let mac = nodes[0];
    let fail = |node: NodeIndex, message: String| Err(graph.error(file, node, message));
    let input = graph.input_type(mac).expect("typed").precision;
    let acc = graph.output_type(mac).expect("typed").precision;
    let Op::Mac {
        weight_precision, ..
    } = graph.graph[mac].op
    else {
        unreachable!("the group starts with its MAC")
    };
    match weight_precision {
        Precision::Bipolar => {}
        Precision::Int { bits, signed: true } if (2..=16).contains(&bits) => {}
        other => {
            return fail(
                mac,
                format!("the RTL takes bipolar or signed 2..=16-bit weights, not {other}"),
            )
        }
    }
    let inputs = match input {
        Precision::Bipolar => (-1, 1),
        Precision::Int {
            bits,
            signed: false,
        } if bits <= 16 => input.code_range().expect("integer"),
        other => {
            return fail(
                mac,
                format!(
                    "the RTL takes bipolar or unsigned activations of up to 16 bits, not {other}"
                ),
            )
        }
    };
    let (lo, hi) = infer_accumulators::accumulator_bounds(
        weight_precision.code_range().expect("integer"),
        inputs,
        fan_in,
    );
    let (acc_lo, acc_hi) = acc.code_range().expect("lowered");
    if lo < acc_lo || hi > acc_hi {
        return fail(
            mac,
            format!("accumulator {acc} cannot hold the worst case {lo}..={hi}"),
        );
    }
    for &node in &nodes[1..] {
        let out = graph.output_type(node).expect("typed").precision;
        match &graph.graph[node].op {
            Op::MultiThreshold(table) => {
                let outside = table
                    .thresholds
                    .iter()
                    .flatten()
                    .any(|&t| t < acc_lo - 1 || t > acc_hi + 1);
                if outside {
                    return fail(node, format!("a threshold lies outside the accumulator range {acc_lo}..={acc_hi} (+-1)"));
                }
            }
            Op::Requantize(r) => {
                let logits = graph
                    .successor(node)
                    .is_some_and(|s| graph.graph[s].op == Op::Output);
                if logits && out.storage_bits() > 32 {
                    return fail(
                        node,
                        format!(
                            "logits of {} bits exceed the 32 bits the RTL compares",
                            out.storage_bits()
                        ),
                    );
                }
                if let (Some((lo, hi)), Some((min, max))) = (r.clamp, out.code_range()) {
                    if lo < min || hi > max || (!logits && lo < 0) {
                        return fail(
                            node,
                            format!("clamp {lo}..={hi} does not fit its output {out}"),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    let raw_logits = nodes.len() == 1
        && graph
            .successor(mac)
            .is_some_and(|s| graph.graph[s].op == Op::Output);
    if raw_logits && acc.storage_bits() > 32 {
        return fail(
            mac,
            format!(
                "logits of {} bits exceed the 32 bits the RTL compares",
                acc.storage_bits()
            ),
        );
    }
    Ok(())
}

/// Cycles the window loader takes for output pixel (oy, ox): per row of the receptive field,
/// one cycle per SIMD zeros of padding, and one cycle per input-buffer row the run of pixels
/// inside the image touches.
pub fn load_cycles(layer: &LayerSchedule, simd: usize, oy: usize, ox: usize) -> u64 {
    let (k, c) = (layer.kernel, layer.input.channels);
    let (pad, stride) = (layer.padding as isize, layer.stride as isize);
    let ox_s = ox as isize * stride;
    let kx0 = (pad - ox_s).clamp(0, k as isize) as usize;
    let kx1 = (layer.input.width as isize + pad - ox_s).clamp(0, k as isize) as usize;
    let mut cycles = 0;
    for ky in 0..k {
        let iy = (oy * layer.stride + ky) as isize - pad;
        if iy < 0 || iy >= layer.input.height as isize || kx1 <= kx0 {
            cycles += (k * c).div_ceil(simd) as u64;
            continue;
        }
        if kx0 > 0 {
            cycles += (kx0 * c).div_ceil(simd) as u64;
        }
        let start =
            ((iy as usize * layer.input.width) as isize + ox_s + kx0 as isize - pad) as usize * c;
        let len = (kx1 - kx0) * c;
        cycles += ((start + len - 1) / simd - start / simd + 1) as u64;
        if kx1 < k {
            cycles += ((k - kx1) * c).div_ceil(simd) as u64;
        }
    }
    cycles
}

/// The controller's cycles for a layer: loading the first window, then per pixel the longer of
/// computing it and loading the next window, then the last pixel and the pipeline drain.
pub fn predicted_cycles(layer: &LayerSchedule, config: ArrayConfig) -> u64 {
    let compute = (layer.groups * layer.chunks) as u64;
    let (h, w) = (layer.output.height, layer.output.width);
    let mut cycles = LAYER_START_CYCLES + load_cycles(layer, config.simd, 0, 0);
    for p in 1..h * w {
        cycles += compute.max(load_cycles(layer, config.simd, p / w, p % w));
    }
    cycles + compute + DRAIN_CYCLES
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "schedule on PE={} SIMD={}: {} cycles per inference ({} input + {} compute), utilization {:.3}",
            self.config.pe,
            self.config.simd,
            self.total_cycles,
            self.input_cycles,
            self.total_cycles - self.input_cycles,
            self.utilization()
        )?;
        writeln!(
            f,
            "  {:<10} {:>9} {:>6} {:>5} {:>5} {:>10} {:>10} {:>10} {:>6}  post",
            "layer", "K", "Cout", "G", "T", "MACs", "ideal", "cycles", "util"
        )?;
        for l in &self.layers {
            writeln!(
                f,
                "  {:<10} {:>9} {:>6} {:>5} {:>5} {:>10} {:>10} {:>10} {:>6.3}  {}{}",
                l.name,
                l.fan_in,
                l.output.channels,
                l.groups,
                l.chunks,
                l.macs,
                l.ideal_cycles,
                l.cycles,
                l.utilization(self.config),
                match &l.post {
                    Post::Threshold { bipolar: true, .. } => "sign".to_string(),
                    Post::Threshold { table, .. } => format!(
                        "{} thresholds",
                        table.thresholds.first().map_or(0, Vec::len)
                    ),
                    Post::Requantize { .. } => "multiply-shift".to_string(),
                    Post::Raw => "raw".to_string(),
                },
                l.pool
                    .map(|(s, _)| format!(", maxpool {s}x{s}"))
                    .unwrap_or_default()
            )?;
        }
        Ok(())
    }
}
