//! The work a simulation counted (`qnnc sim --activity`): per layer, the memory words the
//! datapath read and wrote, the outputs it computed and stored, the MAC lane operations on real
//! operands, and the toggles of its registers, beside what the schedule predicts and what the
//! energy model assumes for the same layer.
//!
//! The testbench counts under `+activity` and prints `activity LAYER NAME COUNT` lines, summed
//! over the images ([`parse_activity`]); [`report`] turns them into counts per inference.

use serde::{Deserialize, Serialize};

use super::Expectation;
use crate::codegen::Hardware;
use crate::energy::LayerWork;
use crate::schedule::{LayerTraffic, Post, Schedule};

/// What the testbench counted in one layer, summed over the images: the accesses and the work
/// of [`LayerTraffic`], and the bits that changed from one cycle to the next, while the layer
/// ran, in the weight word and the activation word that enter the lanes and in the
/// accumulators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerActivity {
    pub traffic: LayerTraffic,
    pub weight_toggles: u64,
    pub activation_toggles: u64,
    pub accumulator_toggles: u64,
}

/// The counters the testbench prints, by name; the memory accesses come first.
pub const ACCESS_COUNTERS: usize = 6;
pub const COUNTERS: [&str; 12] = [
    "weight_reads",
    "source_reads",
    "window_writes",
    "window_reads",
    "activation_writes",
    "parameter_reads",
    "outputs_computed",
    "outputs_stored",
    "lane_macs",
    "weight_toggles",
    "activation_toggles",
    "accumulator_toggles",
];

impl LayerActivity {
    fn counter(&mut self, name: &str) -> Option<&mut u64> {
        let t = &mut self.traffic;
        Some(match name {
            "weight_reads" => &mut t.weight_reads,
            "source_reads" => &mut t.source_reads,
            "window_writes" => &mut t.window_writes,
            "window_reads" => &mut t.window_reads,
            "activation_writes" => &mut t.activation_writes,
            "parameter_reads" => &mut t.parameter_reads,
            "outputs_computed" => &mut t.outputs_computed,
            "outputs_stored" => &mut t.outputs_stored,
            "lane_macs" => &mut t.lane_macs,
            "weight_toggles" => &mut self.weight_toggles,
            "activation_toggles" => &mut self.activation_toggles,
            "accumulator_toggles" => &mut self.accumulator_toggles,
            _ => return None,
        })
    }
}

/// The line the testbench prints for each counter of each layer under `+activity`.
const ACTIVITY_LINE: &str = "activity ";

/// Reads the testbench's `activity` lines: every counter of every layer exactly once, each
/// naming a layer of the design; a memory access count (at most one a cycle) within the cycle
/// budget.
pub fn parse_activity(stdout: &str, expect: &Expectation) -> Result<Vec<LayerActivity>, String> {
    let mut layers = vec![LayerActivity::default(); expect.layers];
    let mut seen = vec![[false; COUNTERS.len()]; expect.layers];
    let mut lines = 0;
    for line in stdout.lines().filter(|l| l.starts_with(ACTIVITY_LINE)) {
        lines += 1;
        let words: Vec<&str> = line.split_whitespace().collect();
        let refuse = || {
            format!("the simulator reported '{line}', which is not a count of one of the design's {} layers", expect.layers)
        };
        let ["activity", layer, name, value] = words.as_slice() else {
            return Err(refuse());
        };
        let (Ok(layer), Some(index), Ok(value)) = (
            layer.parse::<usize>(),
            COUNTERS.iter().position(|c| c == name),
            value.parse::<u64>(),
        ) else {
            return Err(refuse());
        };
        if layer >= expect.layers || seen[layer][index] {
            return Err(refuse());
        }
        if index < ACCESS_COUNTERS && value > expect.max_cycles {
            return Err(format!(
                "the simulator reported {name} {value} in layer {layer}, more than one a cycle of the budget of {} cycles",
                expect.max_cycles
            ));
        }
        seen[layer][index] = true;
        *layers[layer].counter(name).expect("a known counter") = value;
    }
    if lines == 0 {
        return Err(
            "the testbench printed no activity counts (+activity); compile the build again with this qnnc"
                .into(),
        );
    }
    if let Some((layer, missing)) = seen.iter().enumerate().find_map(|(l, s)| {
        s.iter()
            .position(|&seen| !seen)
            .map(|index| (l, COUNTERS[index]))
    }) {
        return Err(format!(
            "the simulator reported no {missing} for layer {layer}"
        ));
    }
    Ok(layers)
}

/// Words of a memory and the bits they hold, per inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub words: u64,
    pub bits: u64,
}

/// The energy model's counts for a layer (see `energy::model`), at p = the array's lanes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCounts {
    /// N_c.
    pub macs: u64,
    /// N_s.
    pub weights: u64,
    /// A_s.
    pub outputs_computed: u64,
    /// A_out.
    pub outputs_stored: u64,
    pub wbits: u32,
    pub abits_in: u32,
    pub abits: u32,
    /// N_c / sqrt(p): the reads of weights, and as many of activations, from the local memory
    /// that the model assumes.
    pub local_reads: f64,
    /// local_reads x Qw, local_reads x Qa_in, and A_out x Qa_out (the model writes each
    /// stored output once, and reads it back once, from main memory).
    pub weight_read_bits: f64,
    pub activation_read_bits: f64,
    pub activation_write_bits: u64,
}

/// What the simulation counted over what the model assumes: bits for memory accesses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    /// Weight bits read over N_c/sqrt(p) x Qw.
    pub weight_reads: f64,
    /// Activation bits read (source buffer and window memory) over N_c/sqrt(p) x Qa_in.
    pub activation_reads: f64,
    /// Activation bits written over A_out x Qa_out.
    pub activation_writes: f64,
    /// Outputs computed over A_s, stored over A_out, lane operations over N_c.
    pub outputs_computed: f64,
    pub outputs_stored: f64,
    pub lane_macs: f64,
}

/// One layer's activity per inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerActivityReport {
    pub name: String,
    pub weight_reads: Access,
    pub source_reads: Access,
    pub window_writes: Access,
    pub window_reads: Access,
    pub activation_writes: Access,
    pub parameter_reads: Access,
    pub outputs_computed: u64,
    pub outputs_stored: u64,
    pub lane_macs: u64,
    /// Bits changed from one cycle to the next while the layer ran (mean over the images).
    pub weight_toggles: f64,
    pub activation_toggles: f64,
    pub accumulator_toggles: f64,
    /// What the schedule predicts for the counts above.
    pub predicted: LayerTraffic,
    /// Whether every image counted exactly `predicted`.
    pub as_predicted: bool,
    pub model: ModelCounts,
    pub ratios: Ratios,
}

/// The activity of every layer, per inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityReport {
    /// p of the model's N_c / sqrt(p): the array's lanes, PE x SIMD.
    pub parallel_macs: usize,
    pub layers: Vec<LayerActivityReport>,
}

/// Bits of a word of each memory the counters count, as the design built from `hw` has them.
struct WordBits {
    weight: u64,
    pixel: u64,
    activation: u64,
    window: u64,
    thresholds: u64,
    requantization: u64,
}

impl WordBits {
    fn new(hw: &Hardware) -> WordBits {
        let (pe, simd) = (hw.pe as u64, hw.simd as u64);
        WordBits {
            weight: pe * simd * u64::from(hw.wbits),
            pixel: simd * 8,
            activation: simd * u64::from(hw.abits),
            // Each element with its valid bit.
            window: simd * u64::from(hw.ebits + 1),
            // One threshold a level for each PE, and the descending flag beside level 0's.
            thresholds: pe * u64::from(hw.threshold_levels * hw.threshold_bits + 1),
            requantization: pe * u64::from(hw.multiplier_bits + hw.offset_bits),
        }
    }
}

/// The activity per inference of each layer of `schedule` from the counts of `images` images,
/// beside the schedule's prediction and the model's counts (`work`, the layers in order).
pub fn report(
    schedule: &Schedule,
    work: &[LayerWork],
    counted: &[LayerActivity],
    images: usize,
) -> ActivityReport {
    let hw = Hardware::new(schedule);
    let bits = WordBits::new(&hw);
    let n = images.max(1) as u64;
    // Every image makes the same accesses; the mean, rounded, is that count.
    let per_image = |total: u64| (total + n / 2) / n;
    let mean = |total: u64| total as f64 / n as f64;
    let p = schedule.config.pe * schedule.config.simd;
    // The schedule and the model's work both list the MAC layers in topological order.
    let layers = schedule
        .layers
        .iter()
        .zip(work)
        .zip(counted)
        .enumerate()
        .map(|(index, ((layer, work), counted))| {
            let access = |total: u64, word: u64| {
                let words = per_image(total);
                Access {
                    words,
                    bits: words * word,
                }
            };
            let c = &counted.traffic;
            let predicted = crate::schedule::predicted_traffic(layer, schedule.config);
            let source_word = if index == 0 {
                bits.pixel
            } else {
                bits.activation
            };
            let parameter_word = match layer.post {
                Post::Threshold { .. } => bits.thresholds,
                Post::Requantize { .. } => bits.requantization,
                Post::Raw => 0,
            };
            let local_reads = work.macs as f64 / (p as f64).sqrt();
            let model = ModelCounts {
                macs: work.macs,
                weights: work.weights,
                outputs_computed: work.outputs_computed,
                outputs_stored: work.outputs_stored,
                wbits: work.wbits,
                abits_in: work.abits_in,
                abits: work.abits_out,
                local_reads,
                weight_read_bits: local_reads * f64::from(work.wbits),
                activation_read_bits: local_reads * f64::from(work.abits_in),
                activation_write_bits: work.outputs_stored * u64::from(work.abits_out),
            };
            let weight_reads = access(c.weight_reads, bits.weight);
            let source_reads = access(c.source_reads, source_word);
            let window_reads = access(c.window_reads, bits.window);
            let activation_writes = access(c.activation_writes, bits.activation);
            let (outputs_computed, outputs_stored, lane_macs) = (
                per_image(c.outputs_computed),
                per_image(c.outputs_stored),
                per_image(c.lane_macs),
            );
            let ratio = |measured: f64, model: f64| measured / model;
            let ratios = Ratios {
                weight_reads: ratio(weight_reads.bits as f64, model.weight_read_bits),
                activation_reads: ratio(
                    (source_reads.bits + window_reads.bits) as f64,
                    model.activation_read_bits,
                ),
                activation_writes: ratio(
                    activation_writes.bits as f64,
                    model.activation_write_bits as f64,
                ),
                outputs_computed: ratio(outputs_computed as f64, model.outputs_computed as f64),
                outputs_stored: ratio(outputs_stored as f64, model.outputs_stored as f64),
                lane_macs: ratio(lane_macs as f64, model.macs as f64),
            };
            LayerActivityReport {
                name: layer.name.clone(),
                weight_reads,
                source_reads,
                window_writes: access(c.window_writes, bits.window),
                window_reads,
                activation_writes,
                parameter_reads: access(c.parameter_reads, parameter_word),
                outputs_computed,
                outputs_stored,
                lane_macs,
                weight_toggles: mean(counted.weight_toggles),
                activation_toggles: mean(counted.activation_toggles),
                accumulator_toggles: mean(counted.accumulator_toggles),
                predicted,
                as_predicted: *c == predicted.times(n),
                model,
                ratios,
            }
        })
        .collect();
    ActivityReport {
        parallel_macs: p,
        layers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPECT: Expectation = Expectation {
        layers: 2,
        images: 1,
        max_cycles: 1000,
        silence_limit: crate::sim::SILENCE_LIMIT,
    };

    fn lines(layers: usize, value: u64) -> String {
        (0..layers)
            .flat_map(|l| {
                COUNTERS
                    .iter()
                    .map(move |c| format!("activity {l} {c} {value}\n"))
            })
            .collect()
    }

    #[test]
    fn every_counter_of_every_layer_is_read() {
        let counted = parse_activity(&lines(2, 7), &EXPECT).unwrap();
        assert_eq!(counted.len(), 2);
        assert_eq!(counted[1].traffic.lane_macs, 7);
        assert_eq!(counted[0].accumulator_toggles, 7);
    }

    #[test]
    fn counts_outside_the_design_or_missing_are_refused() {
        for (text, needle) in [
            (String::new(), "no activity counts"),
            (lines(1, 7), "no weight_reads for layer 1"),
            (
                lines(2, 7) + "activity 2 lane_macs 1\n",
                "activity 2 lane_macs 1",
            ),
            (
                lines(2, 7) + "activity 0 lane_macs 1\n",
                "activity 0 lane_macs 1",
            ),
            (
                lines(2, 7).replace("0 lane_macs 7", "0 lane_macs -7"),
                "lane_macs -7",
            ),
            (lines(2, 7).replace("0 lane_macs", "0 bogus"), "0 bogus 7"),
            (lines(2, 1001), "weight_reads 1001 in layer 0"),
        ] {
            let error = parse_activity(&text, &EXPECT).unwrap_err();
            assert!(error.contains(needle), "{needle:?} not in {error:?}");
        }
        // Toggles are not bounded by the cycles.
        let mut text = lines(2, 7);
        text = text.replace("0 weight_toggles 7", "0 weight_toggles 5000");
        assert_eq!(
            parse_activity(&text, &EXPECT).unwrap()[0].weight_toggles,
            5000
        );
    }
}
