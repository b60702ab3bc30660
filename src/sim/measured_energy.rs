//! Measured energy (`qnnc sim --activity --calibration FILE`): the activity a simulation
//! counted, priced with the cells `qnnc calibrate` synthesized, beside the energy model's
//! estimate of the same layers under each profile.
//!
//! Per layer, in the profile's units:
//!
//! ```text
//! e_cell    = e_mac16 / cells of one 16x16-bit MAC (calibration)      one cell switching
//! E_lanes   = lane operations x combinational cells of a lane x e_cell  LUTs, carries, DSPs
//! E_toggles = register bits toggled x e_cell                            weight and activation
//!                                                                      words, accumulators
//! E_post    = 3 x outputs computed x cells of a lane x e_cell           as the model's 3 A_s
//! E_memory  = bits read and written (every memory) x e_local16 / 16
//! measured  = E_lanes + E_toggles + E_post + E_memory
//! ```
//!
//! What is measured and what is assumed: lane operations, toggles, outputs and memory bits are
//! counted in the simulation; cells per lane are synthesized at the array's lane widths (the
//! widest weight and operand of any layer: every layer runs on the same lanes). That a
//! combinational cell switches once per lane operation, that a toggled register bit costs one
//! cell, that post-processing costs three MACs an output (the model's own assumption) and
//! that a cell's energy is the same in every class are assumptions. Memory: the build keeps
//! every weight, activation and parameter on chip in block RAMs of a few kbit (iCE40 4 kbit,
//! ECP5 18 kbit), the size class of the profile's local memory, and makes no main-memory
//! access during an inference; so every counted bit is priced at the profile's local-memory
//! energy per bit, e_local16 / 16. The model instead charges main memory for N_s weights and
//! 2 A_out activations; the difference is the platform's, not the count's, and the report
//! shows both.

use serde::{Deserialize, Serialize};

use super::activity::ActivityReport;
use crate::calibrate::Calibration;
use crate::codegen::Hardware;
use crate::energy::model::{layer_energy, local_memory_energy};
use crate::energy::{LayerWork, Profile};

/// Outputs post-processed (batch norm, activation, pooling) cost this many MACs each: the
/// model's assumption, kept so that the two estimates differ only where something was
/// measured.
const POST_MACS_PER_OUTPUT: f64 = 3.0;

/// The figures an estimate under one profile uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    /// The profile as given (preset name or file).
    pub profile: String,
    pub units: String,
    /// Cells of one 16x16-bit MAC in the calibration, which cost the profile's e_mac16.
    pub cells_per_mac16: f64,
    /// e_mac16 / cells_per_mac16.
    pub cell_energy: f64,
    /// LUTs, carries and DSPs of one lane at the array's widths (the calibrated element's
    /// over its lanes).
    pub lane_cells: f64,
    /// Every cell of one lane, flip-flops included: the cost of a MAC of post-processing.
    pub mac_cells: f64,
    /// e_local16 / 16: one bit read or written in any memory of the build.
    pub memory_bit_energy: f64,
    /// p of the model's N_c / sqrt(p): the array's PE x SIMD, not the profile's.
    pub parallel_macs: u32,
}

/// The model's terms for a layer (`energy::model`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTerms {
    pub e_c: f64,
    pub e_w: f64,
    pub e_a: f64,
    pub e_layer: f64,
}

/// One layer: what was counted, its price, and the model's estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerEstimate {
    pub name: String,
    pub lane_macs: u64,
    /// Register bits toggled: weight word, activation word and accumulators.
    pub toggles: f64,
    pub outputs_computed: u64,
    /// Bits read and written in every memory.
    pub memory_bits: u64,
    pub e_lanes: f64,
    pub e_toggles: f64,
    pub e_post: f64,
    pub e_memory: f64,
    /// E_lanes + E_toggles + E_post: compute, beside the model's E_C.
    pub e_compute: f64,
    pub measured: f64,
    pub model: ModelTerms,
    /// measured / model.e_layer.
    pub ratio: f64,
}

/// Every layer under one profile, with the totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileEstimate {
    pub pricing: Pricing,
    pub layers: Vec<LayerEstimate>,
    pub measured: f64,
    pub model: f64,
    pub ratio: f64,
}

/// The measured energy of one inference under each profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredEnergy {
    /// The calibration file as given, its target and Yosys.
    pub calibration: String,
    pub target: String,
    pub yosys: String,
    /// Bits of the weight and of the operand element of the array's lanes.
    pub lane_wbits: u32,
    pub lane_ebits: u32,
    pub profiles: Vec<ProfileEstimate>,
}

/// Prices `activity` (of the build `hw` describes; `work` the model's layers, in order) with
/// `calibration` under each `(name as given, profile)`. Fails, naming the file, when the
/// calibration has no point at the array's lane widths.
pub fn estimate(
    activity: &ActivityReport,
    hw: &Hardware,
    work: &[LayerWork],
    calibration: &Calibration,
    calibration_file: &str,
    profiles: &[(String, Profile)],
) -> Result<MeasuredEnergy, String> {
    let (wbits, ebits) = (hw.wbits, hw.ebits);
    let point = lane_point(calibration, hw, calibration_file)?;
    let lanes = calibration.simd as f64;
    let lane_cells = (point.luts + point.carries + point.dsps) as f64 / lanes;
    let mac_cells = point.cells as f64 / lanes;
    let cells_per_mac16 = calibration.cells_per_mac16();
    let parallel_macs = activity.parallel_macs as u32;
    let profiles = profiles
        .iter()
        .map(|(name, profile)| {
            let pricing = Pricing {
                profile: name.clone(),
                units: profile.units.clone(),
                cells_per_mac16,
                cell_energy: profile.e_mac16 / cells_per_mac16,
                lane_cells,
                mac_cells,
                memory_bit_energy: local_memory_energy(profile, 1),
                parallel_macs,
            };
            let at_array = Profile {
                parallel_macs,
                ..profile.clone()
            };
            let layers: Vec<LayerEstimate> = activity
                .layers
                .iter()
                .zip(work)
                .map(|(counted, work)| price_layer(counted, work, &pricing, &at_array))
                .collect();
            let measured = layers.iter().map(|l| l.measured).sum();
            let model = layers.iter().map(|l| l.model.e_layer).sum();
            ProfileEstimate {
                pricing,
                layers,
                measured,
                model,
                ratio: measured / model,
            }
        })
        .collect();
    Ok(MeasuredEnergy {
        calibration: calibration_file.to_string(),
        target: calibration.target.clone(),
        yosys: calibration.yosys.clone(),
        lane_wbits: wbits,
        lane_ebits: ebits,
        profiles,
    })
}

/// The calibrated processing element at the lane widths of the build `hw` describes, or why
/// there is none.
pub fn lane_point<'a>(
    calibration: &'a Calibration,
    hw: &Hardware,
    calibration_file: &str,
) -> Result<&'a crate::calibrate::Point, String> {
    let (wbits, ebits) = (hw.wbits, hw.ebits);
    calibration.point(wbits, ebits).ok_or_else(|| {
        let bits = if wbits == ebits {
            wbits.to_string()
        } else {
            format!("{wbits} and {ebits}")
        };
        format!(
            "{calibration_file}: points: no processing element of {wbits}-bit weights and {ebits}-bit operands, the lanes of this build; run qnnc calibrate with --bits including {bits}"
        )
    })
}

fn price_layer(
    counted: &super::activity::LayerActivityReport,
    work: &LayerWork,
    pricing: &Pricing,
    profile: &Profile,
) -> LayerEstimate {
    let toggles = counted.weight_toggles + counted.activation_toggles + counted.accumulator_toggles;
    let memory_bits = [
        counted.weight_reads,
        counted.source_reads,
        counted.window_writes,
        counted.window_reads,
        counted.activation_writes,
        counted.parameter_reads,
    ]
    .iter()
    .map(|access| access.bits)
    .sum();
    let e = pricing.cell_energy;
    let e_lanes = counted.lane_macs as f64 * pricing.lane_cells * e;
    let e_toggles = toggles * e;
    let e_post = POST_MACS_PER_OUTPUT * counted.outputs_computed as f64 * pricing.mac_cells * e;
    let e_memory = memory_bits as f64 * pricing.memory_bit_energy;
    let e_compute = e_lanes + e_toggles + e_post;
    let measured = e_compute + e_memory;
    let model = layer_energy(work, profile);
    LayerEstimate {
        name: counted.name.clone(),
        lane_macs: counted.lane_macs,
        toggles,
        outputs_computed: counted.outputs_computed,
        memory_bits,
        e_lanes,
        e_toggles,
        e_post,
        e_memory,
        e_compute,
        measured,
        model: ModelTerms {
            e_c: model.e_c,
            e_w: model.e_w,
            e_a: model.e_a,
            e_layer: model.e_layer,
        },
        ratio: measured / model.e_layer,
    }
}

impl MeasuredEnergy {
    /// The figures used, then a table a profile: measured terms beside the model's.
    pub fn to_table(&self) -> String {
        let mut text = format!(
            "measured energy per inference: the counts above priced with {} ({}, {}), lanes of {}-bit weights and {}-bit operands, against the model at p = PE x SIMD:\n",
            self.calibration, self.target, self.yosys, self.lane_wbits, self.lane_ebits
        );
        for p in &self.profiles {
            let f = &p.pricing;
            text += &format!(
                "  profile {} ({}): a cell switching costs e_mac16 / {:.1} cells = {:.4e}; a lane operation {:.2} combinational cells, a toggled register bit 1 cell, an output post-processed 3 x {:.2} cells; every memory bit e_local16/16 = {:.4e} (all memories on chip)\n",
                f.profile, f.units, f.cells_per_mac16, f.cell_energy, f.lane_cells, f.mac_cells, f.memory_bit_energy
            );
            text += &format!(
                "    {:<10} {:>10} {:>10} {:>10} | {:>10} {:>10} {:>10} {:>10} {:>9}\n",
                "layer",
                "compute",
                "memory",
                "measured",
                "model E_C",
                "E_W",
                "E_A",
                "model",
                "meas/mod"
            );
            for l in &p.layers {
                text += &format!(
                    "    {:<10} {:>10.3e} {:>10.3e} {:>10.3e} | {:>10.3e} {:>10.3e} {:>10.3e} {:>10.3e} {:>9.3}\n",
                    l.name, l.e_compute, l.e_memory, l.measured, l.model.e_c, l.model.e_w, l.model.e_a, l.model.e_layer, l.ratio
                );
            }
            let sum = |f: fn(&LayerEstimate) -> f64| p.layers.iter().map(f).sum::<f64>();
            text += &format!(
                "    {:<10} {:>10.3e} {:>10.3e} {:>10.3e} | {:>10.3e} {:>10.3e} {:>10.3e} {:>10.3e} {:>9.3}\n",
                "total",
                sum(|l| l.e_compute),
                sum(|l| l.e_memory),
                p.measured,
                sum(|l| l.model.e_c),
                sum(|l| l.model.e_w),
                sum(|l| l.model.e_a),
                p.model,
                p.ratio
            );
        }
        text
    }
}

/// A report of `qnnc sim --activity --calibration --format json`, read back to compare
/// several networks (`qnnc calibrate --compare`).
#[derive(Debug, Clone, Deserialize)]
pub struct SimRun {
    pub network: String,
    pub build: String,
    pub test_images: usize,
    pub activity: ActivityReport,
    pub measured_energy: MeasuredEnergy,
}

impl SimRun {
    /// The build folder's last component: "mlp4".
    pub fn label(&self) -> String {
        std::path::Path::new(&self.build)
            .file_name()
            .map_or(self.build.clone(), |n| n.to_string_lossy().to_string())
    }
}

/// The comparison of several runs as Markdown (counts, energies, totals; `plot` is the path
/// of the figure relative to the Markdown) and the points of the figure.
pub fn comparison(
    runs: &[SimRun],
    plot: &str,
) -> (String, Vec<crate::explore::plot::ModelAndMeasured>) {
    use crate::explore::plot::ModelAndMeasured;
    let mut text = String::new();
    let mut points = Vec::new();
    text += "### Access counts per inference: counted in the simulation against the model\n\n";
    text += "Bits of each memory access the array made, over the model's: weights N_c/sqrt(p) x Qw and input activations N_c/sqrt(p) x Qa_in from local memory (p = PE x SIMD), outputs A_out x Qa_out written; lane operations over N_c.\n\n";
    text += "| network | layer | weight bits read | model | ratio | activation bits read | model | ratio | activation bits written | model | ratio | lane operations / N_c |\n";
    text += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for run in runs {
        for l in &run.activity.layers {
            let m = &l.model;
            text += &format!(
                "| {} | {} | {} | {:.0} | {:.2} | {} | {:.0} | {:.2} | {} | {} | {:.2} | {:.2} |\n",
                run.label(),
                l.name,
                l.weight_reads.bits,
                m.weight_read_bits,
                l.ratios.weight_reads,
                l.source_reads.bits + l.window_reads.bits,
                m.activation_read_bits,
                l.ratios.activation_reads,
                l.activation_writes.bits,
                m.activation_write_bits,
                l.ratios.activation_writes,
                l.ratios.lane_macs
            );
        }
    }
    text += "\n### Energy per inference: counted activity priced with the calibration against the model\n\n";
    text += "| network | lanes (Qw x operand) | combinational cells a lane | cells a MAC | test images |\n|---|---|---:|---:|---:|\n";
    for run in runs {
        let e = &run.measured_energy;
        if let Some(p) = e.profiles.first() {
            text += &format!(
                "| {} | {} x {} bits | {:.2} | {:.2} | {} |\n",
                run.label(),
                e.lane_wbits,
                e.lane_ebits,
                p.pricing.lane_cells,
                p.pricing.mac_cells,
                run.test_images
            );
        }
    }
    text += "\n| network | layer | profile | compute | memory | measured | model E_C | model E_W | model E_A | model | measured / model |\n";
    text += "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for run in runs {
        for p in &run.measured_energy.profiles {
            for l in &p.layers {
                text += &format!(
                    "| {} | {} | `{}` | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3} |\n",
                    run.label(),
                    l.name,
                    p.pricing.profile,
                    l.e_compute,
                    l.e_memory,
                    l.measured,
                    l.model.e_c,
                    l.model.e_w,
                    l.model.e_a,
                    l.model.e_layer,
                    l.ratio
                );
                points.push(ModelAndMeasured {
                    series: p.pricing.profile.clone(),
                    label: format!("{} {}", run.label(), l.name),
                    total: false,
                    model: l.model.e_layer,
                    measured: l.measured,
                });
            }
            points.push(ModelAndMeasured {
                series: p.pricing.profile.clone(),
                label: run.label(),
                total: true,
                model: p.model,
                measured: p.measured,
            });
        }
    }
    text +=
        "\n| network | profile | measured | model | measured / model |\n|---|---|---:|---:|---:|\n";
    for run in runs {
        for p in &run.measured_energy.profiles {
            text += &format!(
                "| {} | `{}` | {:.3e} | {:.3e} | {:.3} |\n",
                run.label(),
                p.pricing.profile,
                p.measured,
                p.model,
                p.ratio
            );
        }
    }
    text += &format!("\n![measured against modelled energy]({plot})\n");
    (text, points)
}
