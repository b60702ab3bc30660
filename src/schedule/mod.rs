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

use crate::error::escape_controls;
use crate::ir::ops::accumulator_bounds;
use crate::ir::{Graph, IrError, Op, Precision, Requantization, ThresholdTable, Weights};
use crate::spec::Shape;

/// The size of the PE array.
/// Why a graph cannot be mapped onto the PE array, printed on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The graph is not a verified, integer-only (lowered) graph.
    #[error(transparent)]
    Ir(#[from] IrError),
    /// An array size (`--pe`, `--simd`) out of its bounds or of a shape the datapath cannot
    /// take.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.flag), escape_controls(.message))]
    Array {
        file: String,
        flag: &'static str,
        message: String,
    },
    /// A MAC without trained weights: the graph comes from a spec.
    #[error("{}: {}: has no trained weights (this graph comes from a spec)", escape_controls(.file), escape_controls(.node))]
    NoWeights { file: String, node: String },
    /// A node or an order of nodes the generated RTL does not implement: shifted adds, other
    /// encodings, overlapping pools, a network that does not end in a MAC...
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Unsupported {
        file: String,
        node: String,
        message: String,
    },
    /// A count beyond what 64 bits hold.
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Limit {
        file: String,
        node: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArrayConfig {
    pub pe: usize,
    pub simd: usize,
}

impl ArrayConfig {
    /// Checks the array's size: each bound, and the shape the datapath needs. The error names
    /// the flag (`--pe` or `--simd`) and says what is wrong.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let config = self;
        // Bounded first: every memory word and count below grows with PE x SIMD.
        for (flag, value, max) in [
            ("--pe", config.pe, crate::limits::MAX_PE),
            ("--simd", config.simd, crate::limits::MAX_SIMD),
        ] {
            crate::limits::at_most(value, max).map_err(|message| (flag, message))?;
        }
        if config.pe * config.simd > crate::limits::MAX_LANES {
            return Err((
                "--pe",
                format!(
                    "--pe {} x --simd {} is more than the limit of {} lanes (see docs/limits.md)",
                    config.pe,
                    config.simd,
                    crate::limits::MAX_LANES
                ),
            ));
        }
        if config.pe == 0 {
            return Err(("--pe", "must be at least 1".into()));
        }
        if config.simd == 0 || !config.simd.is_power_of_two() {
            return Err(("--simd", format!("{} must be a power of two", config.simd)));
        }
        if config.pe > config.simd {
            return Err((
                "--pe",
                format!(
                    "{} must not exceed --simd {} (one write per bank a cycle)",
                    config.pe, config.simd
                ),
            ));
        }
        Ok(())
    }
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

/// What a hardware layer computes on the PE array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// A convolution or dense layer with its trained weights.
    Mac,
    /// An average pooling: a convolution (kernel = size, stride, no padding) with the identity
    /// mask as weights, its lanes in MASK mode, so that it sums each channel over the window.
    AvgPool,
    /// An addition: a 1x1 convolution whose window at pixel (y, x) is the C channels of the main
    /// tensor, then the C channels of the skip tensor, with the mask [I; I] as weights.
    Add,
}

impl LayerKind {
    /// Whether the lanes pass or drop each activation by bit 0 of the weight (MASK mode).
    pub fn mask(self) -> bool {
        self != LayerKind::Mac
    }

    /// Rows of the window (each `kernel` x C elements): an addition's two sources, else the
    /// kernel's rows.
    pub fn window_rows(self, kernel: usize) -> usize {
        if self == LayerKind::Add {
            2
        } else {
            kernel
        }
    }
}

/// The weights of a mask layer: codes 0 and 1 as unsigned one-bit values (MASK mode reads bit 0
/// only, whatever the network's weight width), so that they never widen the weight memory.
const MASK_PRECISION: Precision = Precision::Int {
    bits: 1,
    signed: false,
};

/// The identity mask of `taps` stacked C x C identities: W[(tap, c), o] = (c == o), rows in
/// the window's order (tap, channel).
fn mask_weights(taps: usize, channels: usize) -> Weights {
    let fan_in = taps * channels;
    Weights {
        step: 1.0,
        fan_in,
        outputs: channels,
        codes: (0..fan_in * channels)
            .map(|i| ((i / channels) % channels == i % channels) as i32)
            .collect(),
    }
}

/// One hardware layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSchedule {
    pub name: String,
    pub kind: LayerKind,
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
    /// The window is the whole input in memory order (a dense layer): the PE array reads the
    /// source buffer's rows directly, without the window loader.
    pub direct: bool,
    pub in_bipolar: bool,
    pub weight_bipolar: bool,
    pub weight_bits: u32,
    pub acc_bits: u32,
    pub out_bits: u32,
    pub post: Post,
    pub last: bool,
    /// Regions of the activation memory, allocated by liveness ([`allocate_regions`]): the
    /// one this layer reads (the first layer reads the pixel buffer instead), the one it writes
    /// (the last layer writes the logits instead), and the second source's (an add's skip).
    pub source_region: usize,
    pub dest_region: usize,
    pub skip_region: usize,
    /// The layers whose stored outputs this layer reads (`None`: the image), main path first.
    #[serde(skip)]
    pub sources: Vec<Option<usize>>,
    /// First word of this layer in the weight memory and in its parameter memory.
    pub weight_base: usize,
    pub param_base: usize,
    /// MACs the array performs: outputs that a max-pool drops (floor mode) are not computed.
    pub macs: u64,
    /// ceil(Cout/PE) * ceil(K/SIMD) * the output pixels computed.
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

    /// The pooling window's side (1 without pooling).
    pub fn pool_size(&self) -> usize {
        self.pool.map_or(1, |(size, _)| size)
    }

    /// MACs whose input element lies inside the image (not the zero padding), counted tap by
    /// tap over the pixels the array computes: a check, independent of the loops, of the lane
    /// operations that [`predicted_traffic`] and the simulation count.
    pub fn macs_inside_image(&self) -> u64 {
        let (h, w) = (self.input.height as i64, self.input.width as i64);
        let (k, stride, pad) = (self.kernel as i64, self.stride as i64, self.padding as i64);
        let mut taps = 0u64;
        for (oy, ox) in self.pixels() {
            for ky in 0..k {
                for kx in 0..k {
                    let (y, x) = (oy as i64 * stride + ky - pad, ox as i64 * stride + kx - pad);
                    taps += ((0..h).contains(&y) && (0..w).contains(&x)) as u64;
                }
            }
        }
        // Elements of the window per tap: C, or an addition's 2C (two sources at one pixel).
        let per_tap = self.fan_in / (self.kernel * self.kernel);
        taps * (per_tap * self.output.channels) as u64
    }

    /// Rows of the window, each `kernel` x C elements: the kernel's, or an addition's two.
    pub fn window_rows(&self) -> usize {
        self.kind.window_rows(self.kernel)
    }

    /// Elements of the source between two rows of the window: a row of the input, or none for
    /// an addition, whose second row is the skip tensor at the same place.
    pub fn window_row_step(&self) -> usize {
        match self.kind {
            LayerKind::Add => 0,
            _ => self.input.width * self.input.channels,
        }
    }

    /// The output pixels the array computes, in the order it computes them: the P x P pixels
    /// of each pooling window after each other, windows in row-major order.
    pub fn pixels(&self) -> impl Iterator<Item = (usize, usize)> {
        let p = self.pool_size();
        let stored = self.stored();
        (0..stored.height).flat_map(move |py| {
            (0..stored.width).flat_map(move |px| {
                (0..p).flat_map(move |ry| (0..p).map(move |rx| (py * p + ry, px * p + rx)))
            })
        })
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
    /// Regions of the activation memory: the most tensors stored at one time.
    pub regions: usize,
}

impl Schedule {
    /// Utilization of the PE array over the layers (input streaming excluded).
    pub fn utilization(&self) -> f64 {
        let cycles: u64 = self.layers.iter().map(|l| l.cycles).sum();
        self.macs as f64 / (cycles as f64 * (self.config.pe * self.config.simd) as f64)
    }
}

/// Cycles of the controller's fixed steps: reading a layer's descriptor (address, then data).
pub const LAYER_START_CYCLES: u64 = 2;

/// Registered levels of each PE's adder tree: about every second level of its log2(SIMD).
pub fn adder_stages(simd: usize) -> u32 {
    simd.trailing_zeros().div_ceil(2)
}

/// Registered stages of the post-processing (thresholds, multiply-shift): the longest, the
/// multiply-shift, is product, offset, shift, comparisons with the clamp, choice.
pub const POST_STAGES: u64 = 5;

/// Cycles from the last chunk issued to the last activation written: operands read and
/// registered, products, the adder tree, the accumulator, the post-processing, max-pool,
/// packing, and the flush of a partly filled row.
pub fn drain_cycles(simd: usize) -> u64 {
    6 + POST_STAGES + adder_stages(simd) as u64
}

/// Cycles from the loader's last piece of a window to the first read of it: the source read,
/// the merge, the window write.
pub const WINDOW_READY_CYCLES: u64 = 3;

/// Cycles from the loader's move to a pixel to the earliest cycle of its last piece: the next
/// pixel's window geometry is computed in two registered stages from the position counters,
/// which move with it. The loader first moves (to pixel 0) this many cycles less one after a
/// layer's start.
pub const GEOMETRY_CYCLES: u64 = 3;

/// Banks of the window memory: the loader may run this many pixels ahead of the PE array.
pub const WINDOW_BANKS: usize = 3;

/// Maps a lowered graph onto a PE array of `config`.
pub fn schedule(graph: &Graph, config: ArrayConfig, file: &str) -> Result<Schedule, ScheduleError> {
    let fail = |node: &str, message: String| ScheduleError::Unsupported {
        file: file.to_string(),
        node: node.to_string(),
        message,
    };
    config
        .check()
        .map_err(|(flag, message)| ScheduleError::Array {
            file: file.to_string(),
            flag,
            message,
        })?;
    crate::ir::verify::verify_lowered(graph, file)?;
    let chain = graph.topological_order();
    let input = graph.output_type(chain[0]).expect("typed").shape;
    let mut layers: Vec<LayerSchedule> = Vec::new();
    // The layer that stores each node's output.
    let mut stored_by: std::collections::HashMap<NodeIndex, usize> =
        std::collections::HashMap::new();
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
            Op::Mac { weights: None, .. } => {
                return Err(ScheduleError::NoWeights {
                    file: file.to_string(),
                    node: name,
                })
            }
            op @ (Op::Mac { .. } | Op::AvgPool { .. } | Op::Add { .. }) => {
                let in_type = graph.input_type(node).expect("typed");
                let acc = graph.output_type(node).expect("typed");
                let channels = in_type.shape.channels;
                // What the PE array computes: a MAC's own weights, or the identity masks of an
                // average pooling (a convolution whose output o sums input channel o over the
                // window) and of an addition (a 1x1 convolution over the main tensor's C
                // channels then the skip tensor's: weights [I; I]).
                let (kind, kernel, stride, padding, weights, weight_precision) = match op {
                    Op::Mac {
                        kernel,
                        stride,
                        padding,
                        weight_precision,
                        weights: Some(weights),
                        ..
                    } => (
                        LayerKind::Mac,
                        *kernel,
                        *stride,
                        *padding,
                        weights.clone(),
                        *weight_precision,
                    ),
                    Op::AvgPool { size, stride } => (
                        LayerKind::AvgPool,
                        *size,
                        *stride,
                        0,
                        mask_weights(size * size, channels),
                        MASK_PRECISION,
                    ),
                    Op::Add { shifts } => {
                        if *shifts != [0, 0] {
                            return Err(fail(
                                &name,
                                format!("the RTL adds tensors of one scale only, not shifted by {shifts:?}"),
                            ));
                        }
                        if graph
                            .input_types(node)
                            .iter()
                            .any(|t| t.precision != in_type.precision)
                        {
                            return Err(fail(
                                &name,
                                "the RTL adds tensors of one precision only".into(),
                            ));
                        }
                        (
                            LayerKind::Add,
                            1,
                            1,
                            0,
                            mask_weights(2, channels),
                            MASK_PRECISION,
                        )
                    }
                    _ => unreachable!("matched above"),
                };
                let (kernel, stride, padding) = (&kernel, &stride, &padding);
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
                let fan_in = kind.window_rows(*kernel) * kernel * channels;
                check_rtl_contract(graph, &chain[k..next], fan_in, file)?;
                let chunks = fan_in.div_ceil(config.simd);
                let groups = output.channels.div_ceil(config.pe);
                // An addition's window is two pieces of two tensors, never one run.
                let direct = kind != LayerKind::Add
                    && *padding == 0
                    && *kernel == in_type.shape.height
                    && *kernel == in_type.shape.width;
                let computed = pool.map_or(output.height * output.width, |(size, pooled)| {
                    pooled.height * size * pooled.width * size
                });
                // Bounded by the verifier's limits on MACs; checked all the same, so that a
                // size nobody bounded cannot wrap into a schedule that looks valid.
                let (macs, ideal_cycles) = (computed as u64)
                    .checked_mul(output.channels as u64)
                    .and_then(|n| n.checked_mul(fan_in as u64))
                    .zip(((groups * chunks) as u64).checked_mul(computed as u64))
                    .ok_or_else(|| ScheduleError::Limit {
                        file: file.to_string(),
                        node: name.clone(),
                        message: "has more MACs than can be counted".into(),
                    })?;
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
                let mut sources = vec![stored_input(graph, node, 0, &stored_by, file)?];
                if kind == LayerKind::Add {
                    sources.push(stored_input(graph, node, 1, &stored_by, file)?);
                }
                let mut layer = LayerSchedule {
                    name,
                    kind,
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
                    direct,
                    in_bipolar: in_type.precision == Precision::Bipolar,
                    weight_bipolar: weight_precision == Precision::Bipolar,
                    weight_bits: weight_precision.storage_bits(),
                    acc_bits: acc.precision.storage_bits(),
                    out_bits,
                    post,
                    last,
                    source_region: 0,
                    dest_region: 0,
                    skip_region: 0,
                    sources,
                    weight_base,
                    param_base,
                    macs,
                    ideal_cycles,
                    cycles: 0,
                    weights,
                };
                layer.cycles = predicted_cycles(&layer, config);
                weight_base += groups * chunks;
                stored_by.insert(chain[next - 1], layers.len());
                layers.push(layer);
                k = next;
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
    let regions = allocate_regions(&mut layers);
    let classes = layers.last().map_or(0, |l| l.output.channels);
    let input_cycles = input.len() as u64;
    // The argmax reads one logit a cycle.
    let total_cycles = input_cycles + layers.iter().map(|l| l.cycles).sum::<u64>() + classes as u64;
    let macs = layers.iter().map(|l| l.macs).sum();
    Ok(Schedule {
        config,
        input,
        classes,
        layers,
        input_cycles,
        total_cycles,
        macs,
        regions,
    })
}

/// The stored tensor a layer's node reads at input `slot` (through flattens): the layer that
/// stores it, or `None` for the image.
fn stored_input(
    graph: &Graph,
    node: NodeIndex,
    slot: usize,
    stored_by: &std::collections::HashMap<NodeIndex, usize>,
    file: &str,
) -> Result<Option<usize>, ScheduleError> {
    let mut from = graph.inputs(node)[slot];
    while graph.graph[from].op == Op::Flatten {
        from = graph.predecessor(from).expect("a flatten reads a tensor");
    }
    if graph.graph[from].op == Op::Input {
        return Ok(None);
    }
    stored_by.get(&from).map(|&l| Some(l)).ok_or_else(|| {
        ScheduleError::Unsupported {
            file: file.to_string(),
            node: graph.graph[node].name.clone(),
            message: format!(
                "reads {}, which no hardware layer stores (the RTL keeps each layer's output only after its activation or max-pool)",
                graph.graph[from].name
            ),
        }
    })
}

/// Gives each stored tensor a region of the activation memory by liveness: a layer writes the
/// lowest region that holds no tensor still to be read (its own sources are still being read),
/// and a tensor's region is free again once its last reader has run. A chain alternates
/// regions 0 and 1; a skip connection keeps its tensor in a third. Returns the regions used.
pub fn allocate_regions(layers: &mut [LayerSchedule]) -> usize {
    let mut last_reader = vec![0; layers.len()];
    for (l, layer) in layers.iter().enumerate() {
        for &s in layer.sources.iter().flatten() {
            last_reader[s] = l;
        }
    }
    let mut holds: Vec<Option<usize>> = Vec::new();
    for l in 0..layers.len() {
        let region_of =
            |s: Option<usize>, layers: &[LayerSchedule]| s.map_or(0, |s| layers[s].dest_region);
        layers[l].source_region = region_of(layers[l].sources[0], layers);
        layers[l].skip_region = layers[l]
            .sources
            .get(1)
            .map_or(0, |&s| region_of(s, layers));
        if !layers[l].last {
            let free = holds.iter().position(Option::is_none).unwrap_or_else(|| {
                holds.push(None);
                holds.len() - 1
            });
            holds[free] = Some(l);
            layers[l].dest_region = free;
        }
        for s in layers[l].sources.clone().into_iter().flatten() {
            if last_reader[s] == l {
                holds[layers[s].dest_region] = None;
            }
        }
    }
    holds.len().max(1)
}

/// What the generated RTL assumes of a MAC and what follows it, beyond what `verify` checks
/// for every graph: operand encodings it decodes, accumulators wide enough for the worst case,
/// thresholds and clamps inside the ranges the memories and buffers hold.
fn check_rtl_contract(
    graph: &Graph,
    nodes: &[NodeIndex],
    fan_in: usize,
    file: &str,
) -> Result<(), ScheduleError> {
    let mac = nodes[0];
    let fail = |node: NodeIndex, message: String| {
        Err(ScheduleError::Unsupported {
            file: file.to_string(),
            node: graph.graph[node].name.clone(),
            message,
        })
    };
    let input = graph.input_type(mac).expect("typed").precision;
    let acc = graph.output_type(mac).expect("typed").precision;
    // The weights' codes, and the terms of each output's sum: a mask layer's weights are 0 or
    // 1, and each of its outputs sums the taps of one channel only.
    let (weight_range, terms) = match graph.graph[mac].op {
        Op::Mac {
            weight_precision, ..
        } => {
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
            (weight_precision.code_range().expect("integer"), fan_in)
        }
        Op::AvgPool { size, .. } => ((0, 1), size * size),
        Op::Add { .. } => ((0, 1), 2),
        _ => unreachable!("the group starts with its MAC, average pooling or addition"),
    };
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
    let (lo, hi) = accumulator_bounds(weight_range, inputs, terms);
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

/// What the window loader does for one output pixel: its pieces (one a cycle), and of them the
/// pieces of runs inside the image, each of which reads a row of the source buffer, and the
/// elements those runs copy (the window's elements that are not padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowPieces {
    pub pieces: u64,
    pub run_pieces: u64,
    pub run_elements: u64,
}

/// Pieces (cycles) the window loader takes for output pixel (oy, ox): per row of the receptive
/// field, its zeros left of the image, its run inside, its zeros right of it (or all zeros when
/// the row lies outside), each cut into pieces that cross neither a row of the source buffer
/// (runs only) nor a row of the window.
pub fn load_pieces(layer: &LayerSchedule, simd: usize, oy: usize, ox: usize) -> u64 {
    window_pieces(layer, simd, oy, ox).pieces
}

/// The loader's pieces for output pixel (oy, ox), as [`load_pieces`] cuts them, with the runs
/// among them.
pub fn window_pieces(layer: &LayerSchedule, simd: usize, oy: usize, ox: usize) -> WindowPieces {
    let c = layer.input.channels as i64;
    let kc = layer.kernel as i64 * c;
    let wc = layer.input.width as i64 * c;
    let hwc = layer.input.height as i64 * wc;
    let (pad, stride) = (layer.padding as i64, layer.stride as i64);
    let ex = (ox as i64 * stride - pad) * c;
    let ey = (oy as i64 * stride - pad) * wc;
    let left = (-ex).clamp(0, kc);
    let right = (wc - ex).clamp(0, kc);
    let simd = simd as i64;
    let row_step = layer.window_row_step() as i64;
    let mut wp = 0i64;
    let mut counted = WindowPieces::default();
    let mut take = |length: i64, run_start: Option<i64>| {
        let (mut rem, mut cur) = (length, run_start.unwrap_or(0));
        while rem > 0 {
            let used = match run_start {
                Some(_) => (wp % simd).max(cur % simd),
                None => wp % simd,
            };
            let count = rem.min(simd - used);
            rem -= count;
            cur += count;
            wp += count;
            counted.pieces += 1;
            if run_start.is_some() {
                counted.run_pieces += 1;
                counted.run_elements += count as u64;
            }
        }
    };
    for ky in 0..layer.window_rows() as i64 {
        let eyk = ey + ky * row_step;
        if eyk < 0 || eyk >= hwc || right <= left {
            take(kc, None);
            continue;
        }
        if left > 0 {
            take(left, None);
        }
        take(right - left, Some(eyk + ex + left));
        if right < kc {
            take(kc - right, None);
        }
    }
    counted
}

/// The memory accesses and the work of one layer in one inference, as the controller and the
/// window loader perform them: what `qnnc sim --activity` counts in the simulation. Words are
/// the memories' words (a weight word holds PE x SIMD weights; a buffer row, SIMD elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct LayerTraffic {
    /// Weight words read: one for each chunk the array issues.
    pub weight_reads: u64,
    /// Rows read from the source buffer (the pixel buffer for the first layer, else the
    /// activation buffer the layer before wrote): by the array for a dense layer, one per chunk;
    /// by the window loader for a convolution, one per piece of a run inside the image.
    pub source_reads: u64,
    /// Rows the window loader writes into the window memory, and the array reads from it.
    pub window_writes: u64,
    pub window_reads: u64,
    /// Rows written into the output activation buffer (none for the last layer, whose outputs
    /// go to the logit register).
    pub activation_writes: u64,
    /// Outputs post-processed (before a max-pool), and stored (after it; the logits of the
    /// last layer).
    pub outputs_computed: u64,
    pub outputs_stored: u64,
    /// Reads of an output group's parameters (PE channels' thresholds, or multipliers and
    /// offsets): one for each group of each pixel computed, none for raw logits.
    pub parameter_reads: u64,
    /// Lane operations on real operands: a MAC of a weight of an output channel (not a PE past
    /// the last one) with an input element (neither a lane past the fan-in nor the zero padding
    /// of a convolution's window).
    pub lane_macs: u64,
}

impl LayerTraffic {
    /// The traffic of `n` inferences.
    pub fn times(&self, n: u64) -> LayerTraffic {
        LayerTraffic {
            weight_reads: self.weight_reads * n,
            source_reads: self.source_reads * n,
            window_writes: self.window_writes * n,
            window_reads: self.window_reads * n,
            activation_writes: self.activation_writes * n,
            outputs_computed: self.outputs_computed * n,
            outputs_stored: self.outputs_stored * n,
            parameter_reads: self.parameter_reads * n,
            lane_macs: self.lane_macs * n,
        }
    }
}

/// The traffic of a layer in one inference, from the loops of the controller (groups, chunks
/// and pixels) and of the window loader (its pieces), as [`predicted_cycles`] walks them.
pub fn predicted_traffic(layer: &LayerSchedule, config: ArrayConfig) -> LayerTraffic {
    let (groups, chunks) = (layer.groups as u64, layer.chunks as u64);
    let channels = layer.output.channels as u64;
    let mut pixels = 0u64;
    let mut loaded = WindowPieces::default();
    for (oy, ox) in layer.pixels() {
        pixels += 1;
        if !layer.direct {
            let w = window_pieces(layer, config.simd, oy, ox);
            loaded.run_pieces += w.run_pieces;
            loaded.run_elements += w.run_elements;
        }
    }
    let issues = groups * chunks * pixels;
    let stored = layer.stored().len() as u64;
    LayerTraffic {
        weight_reads: issues,
        source_reads: if layer.direct {
            issues
        } else {
            loaded.run_pieces
        },
        // The loader writes a window row when it is full, and the last, partial one.
        window_writes: if layer.direct { 0 } else { chunks * pixels },
        window_reads: if layer.direct { 0 } else { issues },
        activation_writes: if layer.last {
            0
        } else {
            stored.div_ceil(config.simd as u64)
        },
        outputs_computed: channels * pixels,
        outputs_stored: stored,
        parameter_reads: match layer.post {
            Post::Raw => 0,
            _ => groups * pixels,
        },
        lane_macs: channels
            * if layer.direct {
                layer.fan_in as u64
            } else {
                loaded.run_elements
            },
    }
}

/// The controller's cycles for a layer. A dense layer issues its G*T chunks back to back. For
/// a convolution, the loader fills one window bank while the PE array reads the others: pixel
/// p's loading starts when the loader has finished pixel p-1 and the array has freed p's bank
/// (finished pixel p - WINDOW_BANKS); the array starts p when p's window is written and it has
/// finished p-1, and then issues G*T chunks.
pub fn predicted_cycles(layer: &LayerSchedule, config: ArrayConfig) -> u64 {
    let compute = (layer.groups * layer.chunks) as u64;
    let run = if layer.direct {
        compute
    } else {
        // Cycles counted from the first cycle of the run: the loader's move to the pixel (its
        // priming, then the last piece of the previous pixel), and the last issue of each of
        // the pixels still holding a bank.
        let mut moved = GEOMETRY_CYCLES - 1;
        let mut issued: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
        for (oy, ox) in layer.pixels() {
            let bank_free = if issued.len() == WINDOW_BANKS {
                issued.pop_front().map_or(0, |e| e + 1)
            } else {
                0
            };
            let start = (moved + 1).max(bank_free);
            let last_piece =
                (start + load_pieces(layer, config.simd, oy, ox) - 1).max(moved + GEOMETRY_CYCLES);
            let previous = issued.back().map_or(0, |e| e + 1);
            let first_issue = (last_piece + WINDOW_READY_CYCLES).max(previous);
            issued.push_back(first_issue + compute - 1);
            moved = last_piece;
        }
        issued.back().map_or(0, |e| e + 1)
    };
    LAYER_START_CYCLES + run + drain_cycles(config.simd)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::examples::example_network;
    use crate::train::Net;

    #[test]
    fn a_chain_alternates_two_regions_of_the_activation_memory() {
        for example in [
            ("mlp", include_str!("../../examples/fmnist_mlp.toml")),
            ("cnn", include_str!("../../examples/fmnist_cnn.toml")),
        ] {
            let network = example_network(example, crate::spec::Precision::Bits(2));
            let mut graph = Net::new(&network, 1).to_graph(example.0).unwrap();
            crate::ir::passes::run(&mut graph, example.0, None).unwrap();
            let schedule = schedule(&graph, ArrayConfig { pe: 4, simd: 8 }, example.0).unwrap();
            assert_eq!(schedule.regions, 2, "{}", example.0);
            for (l, layer) in schedule.layers.iter().enumerate() {
                assert_eq!(layer.sources, vec![l.checked_sub(1)], "{}", layer.name);
                if l > 0 {
                    assert_eq!(layer.source_region, (l - 1) % 2, "{}", layer.name);
                }
                if !layer.last {
                    assert_eq!(layer.dest_region, l % 2, "{}", layer.name);
                }
            }
        }
    }

    #[test]
    fn a_skip_connection_keeps_its_tensor_in_a_third_region() {
        // stem -> a -> b -> add(b, stem) -> c -> add(c, add) -> logits, as source lists.
        let sources: [Vec<Option<usize>>; 6] = [
            vec![None],
            vec![Some(0)],
            vec![Some(1)],
            vec![Some(2), Some(0)],
            vec![Some(3)],
            vec![Some(4), Some(3)],
        ];
        let graph = {
            let network = example_network(
                ("mlp", include_str!("../../examples/fmnist_mlp.toml")),
                crate::spec::Precision::Bits(2),
            );
            let mut graph = Net::new(&network, 1).to_graph("mlp").unwrap();
            crate::ir::passes::run(&mut graph, "mlp", None).unwrap();
            graph
        };
        let template = schedule(&graph, ArrayConfig { pe: 1, simd: 1 }, "mlp")
            .unwrap()
            .layers[0]
            .clone();
        let mut layers: Vec<LayerSchedule> = sources
            .iter()
            .enumerate()
            .map(|(l, s)| LayerSchedule {
                sources: s.clone(),
                last: l == sources.len() - 1,
                ..template.clone()
            })
            .collect();
        let regions = allocate_regions(&mut layers);
        let placed: Vec<(usize, usize, usize)> = layers
            .iter()
            .map(|l| (l.source_region, l.skip_region, l.dest_region))
            .collect();
        // The stem's tensor (region 0) lives until the first add; the first add's (region 1)
        // until the second; the logits are written nowhere.
        assert_eq!(
            placed,
            [
                (0, 0, 0),
                (0, 0, 1),
                (1, 0, 2),
                (2, 0, 1),
                (1, 0, 0),
                (0, 1, 0)
            ]
        );
        assert_eq!(regions, 3);
    }

    #[test]
    fn predicted_traffic_agrees_with_the_taps_and_the_ideal_cycles() {
        for example in [
            ("cnn", include_str!("../../examples/fmnist_cnn.toml")),
            ("tiny_cnn", include_str!("../../examples/tiny_cnn.toml")),
        ] {
            let network = example_network(example, crate::spec::Precision::Bits(2));
            let mut graph = Net::new(&network, 1).to_graph(example.0).unwrap();
            crate::ir::passes::run(&mut graph, example.0, None).unwrap();
            for (pe, simd) in [(1, 1), (3, 4), (8, 16), (4, 32)] {
                let config = ArrayConfig { pe, simd };
                let schedule = schedule(&graph, config, example.0).unwrap();
                for layer in &schedule.layers {
                    let at = format!("{} {} on {pe}x{simd}", example.0, layer.name);
                    let traffic = predicted_traffic(layer, config);
                    assert_eq!(traffic.lane_macs, layer.macs_inside_image(), "{at}");
                    assert_eq!(traffic.weight_reads, layer.ideal_cycles, "{at}");
                    // A convolution's source rows are read by its runs, a subset of its pieces.
                    let pieces: u64 = layer
                        .pixels()
                        .map(|(oy, ox)| load_pieces(layer, simd, oy, ox))
                        .sum();
                    assert!(layer.direct || traffic.source_reads <= pieces, "{at}");
                }
            }
        }
    }
}
