//! Verilog emission: the hand-written modules of `templates/verilog`, the network's top level
//! and testbench from handlebars templates (strict: a missing field is an error), and the
//! memory images. Every width, depth and address is computed here; templates hold no logic.

pub mod descriptor;
pub mod images;

use std::collections::BTreeMap;

use handlebars::Handlebars;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::escape_controls;
use crate::ir::{Graph, Precision};
use crate::schedule::{Post, Schedule};
use crate::spec::is_identifier;

/// The hand-written modules, copied into every build.
pub const PRIMITIVES: [(&str, &str); 11] = [
    (
        "qnnc_lane.v",
        include_str!("../../templates/verilog/qnnc_lane.v"),
    ),
    (
        "qnnc_pe.v",
        include_str!("../../templates/verilog/qnnc_pe.v"),
    ),
    (
        "qnnc_threshold.v",
        include_str!("../../templates/verilog/qnnc_threshold.v"),
    ),
    (
        "qnnc_requant.v",
        include_str!("../../templates/verilog/qnnc_requant.v"),
    ),
    (
        "qnnc_rom.v",
        include_str!("../../templates/verilog/qnnc_rom.v"),
    ),
    (
        "qnnc_ram.v",
        include_str!("../../templates/verilog/qnnc_ram.v"),
    ),
    (
        "qnnc_delay.v",
        include_str!("../../templates/verilog/qnnc_delay.v"),
    ),
    (
        "qnnc_rotate.v",
        include_str!("../../templates/verilog/qnnc_rotate.v"),
    ),
    (
        "qnnc_argmax.v",
        include_str!("../../templates/verilog/qnnc_argmax.v"),
    ),
    (
        "qnnc_loader.v",
        include_str!("../../templates/verilog/qnnc_loader.v"),
    ),
    (
        "qnnc_core.v",
        include_str!("../../templates/verilog/qnnc_core.v"),
    ),
];

/// The include that names the descriptor's fields (written for each network).
pub const LAYOUT_INCLUDE: &str = "qnnc_layout.vh";

const TOP_TEMPLATE: &str = include_str!("../../templates/verilog/top.v.hbs");
const TESTBENCH_TEMPLATE: &str = include_str!("../../templates/tb/testbench.v.hbs");
const README_TEMPLATE: &str = include_str!("../../templates/build_readme.md.hbs");

/// Every width and depth of the generated hardware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hardware {
    pub pe: usize,
    pub simd: usize,
    pub simd_log2: u32,
    /// Registered levels of each PE's adder tree.
    pub adder_stages: u32,
    /// Weight code bits (1 when every layer's weights are bipolar).
    pub wbits: u32,
    /// Bits of an activation code in the activation buffers.
    pub abits: u32,
    /// Bits of an operand element in the lanes: a pixel or a code, whichever is wider.
    pub ebits: u32,
    pub acc_bits: u32,
    /// Levels of the thresholds' binary search: every channel has 2^levels - 1 thresholds.
    pub threshold_levels: u32,
    pub threshold_bits: u32,
    pub multiplier_bits: u32,
    pub offset_bits: u32,
    pub requant_bits: u32,
    pub logit_bits: u32,
    pub classes: usize,
    pub class_bits: u32,
    /// Logit registers: the last layer's groups times PE.
    pub logit_slots: usize,
    pub inputs: usize,
    pub input_bits: u32,
    /// Rows of SIMD pixels.
    pub pixel_rows: usize,
    pub pixel_address_bits: u32,
    /// Rows of SIMD codes of the largest stored tensor: the rows of a region of the activation
    /// memory, whose address is `{region, row}`.
    pub act_rows: usize,
    pub act_address_bits: u32,
    /// Regions of the activation memory (`Schedule::regions`), the bits that number them, and
    /// the memory's rows: every region but the last is a full 2^act_address_bits rows.
    pub act_regions: usize,
    pub act_region_bits: u32,
    pub act_depth: usize,
    /// Rows of a window bank (the window memory holds `schedule::WINDOW_BANKS`).
    pub window_rows: usize,
    pub window_address_bits: u32,
    /// Bits of the loader's element count within a window.
    pub window_position_bits: u32,
    /// 1 when some layer needs the window loader (a convolution), else 0.
    pub windowed: u32,
    /// Output groups whose max-pool is kept in flight (the most of any pooling layer).
    pub pool_groups: usize,
    pub layers: usize,
    pub layer_bits: u32,
    pub weight_words: usize,
    pub weight_address_bits: u32,
    pub threshold_words: usize,
    pub threshold_address_bits: u32,
    pub requant_words: usize,
    pub requant_address_bits: u32,
}

/// Bits to address `n` items (at least 1).
fn address_bits(n: usize) -> u32 {
    (usize::BITS - n.saturating_sub(1).leading_zeros()).max(1)
}

/// Bits of a count from 0 to `n` (at least 1).
fn count_bits(n: usize) -> u32 {
    (usize::BITS - n.leading_zeros()).max(1)
}

fn signed_bits(min: i64, max: i64) -> u32 {
    Precision::signed_for_range(min, max).storage_bits()
}

impl Hardware {
    pub fn new(schedule: &Schedule) -> Hardware {
        let layers = &schedule.layers;
        let simd = schedule.config.simd;
        let simd_log2 = simd.trailing_zeros();
        let wbits = layers.iter().map(|l| l.weight_bits).max().unwrap_or(1);
        let abits = layers
            .iter()
            .filter(|l| !l.last)
            .map(|l| l.out_bits)
            .max()
            .unwrap_or(1)
            .max(1);
        let ebits = abits.max(8);
        // The shared accumulator holds every layer's sums and the adder tree's widest sum
        // (qnnc_pe.v sign-extends the tree's output to it).
        let acc_bits = layers
            .iter()
            .map(|l| l.acc_bits)
            .max()
            .unwrap_or(2)
            .max(wbits + ebits + 2 + simd_log2);
        let thresholds = layers
            .iter()
            .filter_map(|l| match &l.post {
                Post::Threshold { table, .. } => table.thresholds.first().map(Vec::len),
                _ => None,
            })
            .max()
            .unwrap_or(1)
            .max(1);
        let threshold_levels = usize::BITS - thresholds.leading_zeros();
        let (mut multiplier_bits, mut offset_bits, mut requant_bits) = (2, 2, acc_bits + 2);
        for l in layers {
            if let Post::Requantize { requantization: r } = &l.post {
                let acc = Precision::signed(l.acc_bits).code_range().expect("integer");
                for (&m, &b) in r.multiplier.iter().zip(&r.offset) {
                    multiplier_bits = multiplier_bits.max(signed_bits(m, m));
                    offset_bits = offset_bits.max(signed_bits(b, b));
                    // The verifier checked that these fit 64 bits.
                    let ends = [
                        acc.0.saturating_mul(m).saturating_add(b),
                        acc.1.saturating_mul(m).saturating_add(b),
                    ];
                    requant_bits = requant_bits
                        .max(signed_bits(ends[0].min(ends[1]), ends[0].max(ends[1])) + 1);
                }
            }
        }
        requant_bits = requant_bits
            .max(multiplier_bits.max(offset_bits) + 1)
            .max(acc_bits + multiplier_bits + 1)
            .max(33);
        let last = layers.last().expect("a schedule has layers");
        let logit_bits = last.out_bits.max(2);
        let stored = layers
            .iter()
            .filter(|l| !l.last)
            .map(|l| l.stored().len())
            .max()
            .unwrap_or(1)
            .max(1);
        let window = layers
            .iter()
            .filter(|l| !l.direct)
            .map(|l| l.chunks)
            .max()
            .unwrap_or(1);
        let count = |post: fn(&Post) -> bool| {
            layers
                .iter()
                .filter(|l| post(&l.post))
                .map(|l| l.groups)
                .sum::<usize>()
                .max(1)
        };
        let weight_words = layers
            .iter()
            .map(|l| l.groups * l.chunks)
            .sum::<usize>()
            .max(1);
        let threshold_words = count(|p| matches!(p, Post::Threshold { .. }));
        let requant_words = count(|p| matches!(p, Post::Requantize { .. }));
        let inputs = schedule.input.len();
        let pixel_rows = inputs.div_ceil(simd);
        let act_rows = stored.div_ceil(simd);
        Hardware {
            pe: schedule.config.pe,
            simd,
            simd_log2,
            adder_stages: crate::schedule::adder_stages(simd),
            wbits,
            abits,
            ebits,
            acc_bits,
            threshold_levels,
            threshold_bits: acc_bits + 2,
            multiplier_bits,
            offset_bits,
            requant_bits,
            logit_bits,
            classes: schedule.classes,
            class_bits: address_bits(schedule.classes),
            logit_slots: last.groups * schedule.config.pe,
            inputs,
            input_bits: count_bits(inputs),
            pixel_rows,
            pixel_address_bits: address_bits(pixel_rows),
            act_rows,
            act_address_bits: address_bits(act_rows),
            act_regions: schedule.regions,
            act_region_bits: address_bits(schedule.regions),
            act_depth: ((schedule.regions - 1) << address_bits(act_rows)) + act_rows,
            window_rows: window,
            windowed: layers.iter().any(|l| !l.direct) as u32,
            window_address_bits: address_bits(crate::schedule::WINDOW_BANKS * window),
            // Its row part addresses a bank.
            window_position_bits: count_bits(window * simd)
                .max(address_bits(crate::schedule::WINDOW_BANKS * window)),
            pool_groups: layers
                .iter()
                .filter(|l| l.pool.is_some())
                .map(|l| l.groups)
                .max()
                .unwrap_or(1),
            layers: layers.len(),
            layer_bits: address_bits(layers.len()),
            weight_words,
            weight_address_bits: address_bits(weight_words),
            threshold_words,
            threshold_address_bits: address_bits(threshold_words),
            requant_words,
            requant_address_bits: address_bits(requant_words),
        }
    }

    /// Thresholds of every channel, padded: 2^levels - 1.
    pub fn thresholds(&self) -> u32 {
        (1 << self.threshold_levels) - 1
    }

    /// Bits of on-chip memory: weights, thresholds, requantization, the pixel buffer, the
    /// activation memory, the banks of the window memory.
    pub fn memory_bits(&self) -> BTreeMap<&'static str, u64> {
        let pe_simd = (self.pe * self.simd) as u64;
        let simd = self.simd as u64;
        BTreeMap::from([
            (
                "weights",
                self.weight_words as u64 * pe_simd * self.wbits as u64,
            ),
            (
                "thresholds",
                self.threshold_words as u64
                    * self.pe as u64
                    * (self.thresholds() * self.threshold_bits + 1) as u64,
            ),
            (
                "requantization",
                self.requant_words as u64
                    * self.pe as u64
                    * (self.multiplier_bits + self.offset_bits) as u64,
            ),
            ("pixels", self.pixel_rows as u64 * simd * 8),
            (
                "activations",
                self.act_depth as u64 * simd * self.abits as u64,
            ),
            (
                "windows",
                (crate::schedule::WINDOW_BANKS * self.window_rows) as u64
                    * self.windowed as u64
                    * simd
                    * (self.ebits + 1) as u64,
            ),
        ])
    }
}

/// One file of a build: its path inside the build folder and its text.
#[derive(Debug, Clone)]
pub struct BuildFile {
    pub path: String,
    pub text: String,
}

/// The memory images: the folder the RTL reads them from (relative to the build folder; the
/// top module's `MEM_DIR` parameter) and their file names in it.
#[derive(Serialize)]
struct Files {
    dir: &'static str,
    weights: &'static str,
    /// One a level of the thresholds' binary search.
    thresholds: Vec<String>,
    requant: &'static str,
    layers: &'static str,
}

impl Files {
    fn new(hw: &Hardware) -> Files {
        Files {
            dir: "mem",
            weights: "weights.hex",
            thresholds: (0..hw.threshold_levels)
                .map(|level| format!("thresholds_{level}.hex"))
                .collect(),
            requant: "requant.hex",
            layers: "layers.hex",
        }
    }

    /// A file's path in the build folder.
    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }
}

/// What the README's interface section says beyond the widths: the image as the design reads
/// it, and the schedule's timing.
#[derive(Serialize)]
struct Interface {
    inputs: usize,
    shape: String,
    width: usize,
    channels: usize,
    latency: u64,
    input_cycles: u64,
    compute_cycles: u64,
    /// Cycles from one image's first pixel to the next one's, back to back.
    interval: u64,
    throughput: String,
}

/// The clock at which the README states a throughput when no target clock was given.
const REFERENCE_CLOCK_MHZ: f64 = 100.0;

impl Interface {
    fn new(schedule: &Schedule, clock_mhz: Option<f64>) -> Interface {
        let shape = schedule.input;
        // The result is taken in one cycle after `out_valid` rises.
        let interval = schedule.total_cycles + 1;
        let at = |mhz: f64| {
            format!(
                "{:.0} inferences a second at {} MHz",
                mhz * 1e6 / interval as f64,
                crate::implement::board::format_mhz(mhz)
            )
        };
        let throughput = match clock_mhz {
            Some(mhz) => format!("{} (the target clock)", at(mhz)),
            None => format!("{} (no target clock was given)", at(REFERENCE_CLOCK_MHZ)),
        };
        Interface {
            inputs: shape.len(),
            shape: format!(
                "{} rows, {} columns, {} channel{}",
                shape.height,
                shape.width,
                shape.channels,
                if shape.channels == 1 { "" } else { "s" }
            ),
            width: shape.width,
            channels: shape.channels,
            latency: schedule.total_cycles,
            input_cycles: schedule.input_cycles,
            compute_cycles: schedule.total_cycles - schedule.input_cycles,
            interval,
            throughput,
        }
    }
}

#[derive(Serialize)]
struct Context<'a> {
    header: String,
    model: &'a str,
    top: String,
    hw: &'a Hardware,
    class_msb: usize,
    logits_msb: usize,
    class_bits: u32,
    logits_bits: usize,
    files: &'a Files,
    interface: Interface,
    schedule: String,
    memory: String,
    pe: usize,
    simd: usize,
}

/// The name of the top module for a model.
pub fn top_name(model: &str) -> String {
    format!("{model}_top")
}

/// SHA-256 of some text or bytes, in hex.
pub fn digest(data: impl AsRef<[u8]>) -> String {
    Sha256::digest(data.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a build cannot be generated, printed on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodegenError {
    /// A graph or node name that is not a safe identifier in Verilog, C++ and file names (it
    /// could inject code).
    #[error("{}: {}: {}", escape_controls(.file), escape_controls(.node), escape_controls(.message))]
    Name {
        file: String,
        node: String,
        message: String,
    },
}

/// Every file of a build: RTL, memory images, testbench and README. `clock_mhz` is the clock
/// the design is implemented for, if any (the README states the throughput there).
pub fn generate(
    graph: &Graph,
    schedule: &Schedule,
    clock_mhz: Option<f64>,
    file: &str,
) -> Result<(Hardware, Vec<BuildFile>), CodegenError> {
    for node in graph.topological_order() {
        let name = &graph.graph[node].name;
        if !is_identifier(name) {
            return Err(CodegenError::Name {
                file: file.into(),
                node: name.clone(),
                message:
                    "is not a safe identifier (letters, digits and '_', not starting with a digit)"
                        .into(),
            });
        }
    }
    if !is_identifier(&graph.name) {
        return Err(CodegenError::Name {
            file: file.into(),
            node: "(graph)".into(),
            message: format!("network name '{}' is not a safe identifier", graph.name),
        });
    }
    let hw = Hardware::new(schedule);
    let ir_digest = digest(crate::ir::dump::to_json(graph));
    let header = |comment: &str| {
        format!(
            "{comment} Generated by qnnc {} for model {} (IR sha256 {}). Do not edit.",
            env!("CARGO_PKG_VERSION"),
            graph.name,
            &ir_digest[..16]
        )
    };
    let verilog_header = header("//");
    let memory: String = hw
        .memory_bits()
        .iter()
        .map(|(what, bits)| format!("- {what}: {bits} bits\n"))
        .collect();
    let names = Files::new(&hw);
    let context = Context {
        header: verilog_header.clone(),
        model: &graph.name,
        top: top_name(&graph.name),
        hw: &hw,
        class_msb: hw.class_bits as usize - 1,
        logits_msb: hw.classes * hw.logit_bits as usize - 1,
        class_bits: hw.class_bits,
        logits_bits: hw.classes * hw.logit_bits as usize,
        files: &names,
        interface: Interface::new(schedule, clock_mhz),
        schedule: schedule.to_string(),
        memory,
        pe: hw.pe,
        simd: hw.simd,
    };
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(handlebars::no_escape);
    let render = |name: &str, template: &str| {
        registry
            .render_template(template, &context)
            .unwrap_or_else(|e| panic!("template {name} does not fit its context: {e}"))
    };
    let mut files = vec![
        BuildFile {
            path: format!("rtl/{}.v", context.top),
            text: render("top", TOP_TEMPLATE),
        },
        BuildFile {
            path: "tb/testbench.v".into(),
            text: render("testbench", TESTBENCH_TEMPLATE),
        },
        BuildFile {
            path: "README.md".into(),
            text: render("readme", README_TEMPLATE),
        },
    ];
    for (name, text) in PRIMITIVES {
        files.push(BuildFile {
            path: format!("rtl/{name}"),
            text: format!("{verilog_header}\n{text}"),
        });
    }
    let hex_header = format!("{}\n", header("//"));
    files.push(BuildFile {
        path: names.path(names.weights),
        text: images::weights(schedule, &hw, &hex_header),
    });
    for (name, text) in names
        .thresholds
        .iter()
        .zip(images::thresholds(schedule, &hw, &hex_header))
    {
        files.push(BuildFile {
            path: names.path(name),
            text,
        });
    }
    files.push(BuildFile {
        path: names.path(names.requant),
        text: images::requantization(schedule, &hw, &hex_header),
    });
    let layout = descriptor::Layout::new(schedule, &hw);
    files.push(BuildFile {
        path: names.path(names.layers),
        text: layout.image(&hex_header, schedule.layers.len()),
    });
    files.push(BuildFile {
        path: format!("rtl/{LAYOUT_INCLUDE}"),
        text: layout.include(&verilog_header),
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((hw, files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ArrayConfig;
    use crate::spec::examples::example_network;
    use crate::spec::Precision as SpecPrecision;
    use crate::train::Net;

    fn readme(clock_mhz: Option<f64>) -> (Schedule, String) {
        let example = ("tiny_cnn", include_str!("../../examples/tiny_cnn.toml"));
        let network = example_network(example, SpecPrecision::Bits(4));
        let mut graph = Net::new(&network, 1).to_graph("t").unwrap();
        crate::ir::passes::run(&mut graph, "t", None).unwrap();
        let schedule =
            crate::schedule::schedule(&graph, ArrayConfig { pe: 2, simd: 4 }, "t").unwrap();
        let (_, files) = generate(&graph, &schedule, clock_mhz, "t").unwrap();
        let readme = files.into_iter().find(|f| f.path == "README.md").unwrap();
        (schedule, readme.text)
    }

    #[test]
    fn the_readme_states_the_schedule_timing_at_the_target_clock() {
        let (schedule, text) = readme(Some(24.0));
        let latency = schedule.total_cycles;
        assert!(
            text.contains(&format!("**Latency.** {latency} cycles")),
            "{text}"
        );
        assert!(text.contains(&format!("an image every {} cycles", latency + 1)));
        let per_second = (24e6 / (latency + 1) as f64).round();
        assert!(
            text.contains(&format!(
                "{per_second} inferences a second at 24 MHz (the target clock)"
            )),
            "{text}"
        );
        let (_, text) = readme(None);
        assert!(text.contains("at 100 MHz (no target clock was given)"));
    }
}
