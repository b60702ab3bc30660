//! Calibration of the energy model's arithmetic on the hardware qnnc builds: the processing
//! element (SIMD lanes, adder tree, accumulator) synthesized with Yosys at every pair of weight
//! and activation precisions, its cells counted, and the model's form
//! E_MAC ~ (Qw * Qa)^(beta / 2) fitted to the cells a MAC takes.
//!
//! Cells stand for switched capacitance: a lane at twice the bits has about twice the logic to
//! toggle. Their absolute energy is the profile's business; what the synthesis measures is how
//! the cost grows with the bits, which is what beta says.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::energy::{EnergyError, Profile};
use crate::implement::device::Target;
use crate::implement::tools::Tool;
use crate::implement::yosys::{parse_stat, Stat};

/// Names the JSON format in its first field.
pub const FORMAT: &str = "qnnc-calibration";
pub const VERSION: u32 = 1;

/// The precisions calibrated when none are given.
pub const PRECISIONS: [u32; 5] = [1, 2, 4, 8, 16];

/// The paper's exponent (Moons et al. 2017), against which the fit is compared.
pub const PAPER_BETA: f64 = 1.25;

/// Accumulator bits beyond a sum of SIMD products: room for 256 sums.
const ACCUMULATOR_HEADROOM: u32 = 8;

const LANE: &str = include_str!("../templates/verilog/qnnc_lane.v");
const PE: &str = include_str!("../templates/verilog/qnnc_pe.v");
const WRAPPER: &str = include_str!("../templates/calibrate/qnnc_calibration_pe.v");
const WRAPPER_TOP: &str = "qnnc_calibration_pe";

/// One precision pair's processing element after synthesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    pub wbits: u32,
    pub abits: u32,
    pub accumulator_bits: u32,
    /// Look-up tables (generic synthesis: logic gates).
    pub luts: u64,
    /// Carry cells the family has beside its LUTs (iCE40's SB_CARRY, 7-series CARRY4; ECP5's
    /// CCU2C are counted as the two LUTs they are).
    pub carries: u64,
    pub flip_flops: u64,
    pub dsps: u64,
    /// Every cell of the element: what the fit reads.
    pub cells: u64,
    pub cells_per_mac: f64,
}

/// E_MAC ~ scale * (Qw * Qa)^(beta / 2), fitted by least squares on the logarithms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fit {
    pub beta: f64,
    /// Cells per MAC the fit gives at 16 x 16 bits.
    pub cells_per_mac16: f64,
    /// Root mean square of ln(measured / fitted).
    pub rms_log_error: f64,
    /// Largest |measured / fitted - 1| over the points.
    pub max_relative_error: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub format: String,
    pub version: u32,
    pub target: String,
    pub simd: usize,
    pub adder_stages: u32,
    pub yosys: String,
    pub points: Vec<Point>,
    /// The fitted exponent and scale.
    pub fit: Fit,
    /// The paper's exponent with the scale that fits the points best.
    pub paper: Fit,
}

/// Synthesizes the processing element of `simd` lanes at every pair of `precisions` for
/// `target`, two at a time, and fits the energy model's form to the cells.
pub fn calibrate(
    yosys: &Tool,
    target: Target,
    simd: usize,
    precisions: &[u32],
    work: &Path,
) -> Result<Calibration, String> {
    for (name, text) in [
        ("qnnc_lane.v", LANE),
        ("qnnc_pe.v", PE),
        ("qnnc_calibration_pe.v", WRAPPER),
    ] {
        std::fs::write(work.join(name), text).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    let adder_stages = crate::schedule::adder_stages(simd);
    let pairs: Vec<(u32, u32)> = precisions
        .iter()
        .flat_map(|&w| precisions.iter().map(move |&a| (w, a)))
        .collect();
    let points = pairs
        .par_iter()
        .map(|&(wbits, abits)| synthesize(yosys, target, simd, adder_stages, wbits, abits, work))
        .collect::<Result<Vec<_>, String>>()?;
    let samples: Vec<(f64, f64)> = points
        .iter()
        .map(|p| ((p.wbits * p.abits) as f64, p.cells_per_mac))
        .collect();
    Ok(Calibration {
        format: FORMAT.into(),
        version: VERSION,
        target: target.name().into(),
        simd,
        adder_stages,
        yosys: yosys.version(),
        points,
        fit: fit(&samples, None),
        paper: fit(&samples, Some(PAPER_BETA)),
    })
}

fn synthesize(
    yosys: &Tool,
    target: Target,
    simd: usize,
    adder_stages: u32,
    wbits: u32,
    abits: u32,
    work: &Path,
) -> Result<Point, String> {
    let simd_log2 = simd.trailing_zeros();
    let accumulator_bits = wbits + abits + 2 + simd_log2 + ACCUMULATOR_HEADROOM;
    let stat_file = format!("stat_w{wbits}_a{abits}.txt");
    // Multipliers stay logic as in the PE array (qnnc_lane never infers a DSP); synthesis
    // flattens the element so every cell is counted once.
    let synth = match target {
        Target::Generic => format!("synth -flatten -top {WRAPPER_TOP}"),
        Target::Up5k => format!("synth_ice40 -top {WRAPPER_TOP}"),
        Target::Ecp5_85k => format!("synth_ecp5 -top {WRAPPER_TOP}"),
        Target::Xc7 => format!("synth_xilinx -family xc7 -flatten -top {WRAPPER_TOP}"),
    };
    let script = format!(
        "read_verilog qnnc_lane.v qnnc_pe.v qnnc_calibration_pe.v; \
         chparam -set SIMD {simd} -set SIMD_LOG2 {simd_log2} -set WBITS {wbits} -set EBITS {abits} \
         -set ACCW {accumulator_bits} -set ADDER_STAGES {adder_stages} {WRAPPER_TOP}; \
         {synth}; tee -q -o {stat_file} stat"
    );
    let output = yosys
        .command()
        .args(["-q", "-p", &script])
        .current_dir(work)
        .output()
        .map_err(|e| format!("yosys: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr
            .lines()
            .find(|l| l.contains("ERROR"))
            .unwrap_or("failed");
        return Err(format!("yosys at {wbits}x{abits} bits: {}", line.trim()));
    }
    let text = std::fs::read_to_string(work.join(&stat_file))
        .map_err(|e| format!("yosys at {wbits}x{abits} bits wrote no statistics: {e}"))?;
    let stat = parse_stat(&text);
    let (luts, carries, flip_flops, dsps) = count(&stat, target);
    let cells = luts + carries + flip_flops + dsps;
    Ok(Point {
        wbits,
        abits,
        accumulator_bits,
        luts,
        carries,
        flip_flops,
        dsps,
        cells,
        cells_per_mac: cells as f64 / simd as f64,
    })
}

/// LUTs, carries, flip-flops and DSPs of a synthesized element, in the family's units.
fn count(stat: &Stat, target: Target) -> (u64, u64, u64, u64) {
    let family = target.device().map(|d| d.family);
    let resources = stat.resources(family);
    match resources.luts {
        Some(luts) => {
            // ECP5's carries are already in its LUT count.
            let carries = match target {
                Target::Ecp5_85k => 0,
                _ => resources.carries,
            };
            (luts, carries, resources.ffs, resources.dsps)
        }
        None => {
            let gates = stat.total() - resources.ffs - resources.dsps;
            (gates, 0, resources.ffs, resources.dsps)
        }
    }
}

/// Least squares of ln(cost) = ln(k) + (beta / 2) ln(Qw * Qa) over `(Qw * Qa, cost)` samples;
/// with `beta` given, only k is fitted.
fn fit(samples: &[(f64, f64)], beta: Option<f64>) -> Fit {
    let logs: Vec<(f64, f64)> = samples.iter().map(|&(x, y)| (x.ln(), y.ln())).collect();
    let n = logs.len() as f64;
    let mean_x = logs.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = logs.iter().map(|p| p.1).sum::<f64>() / n;
    let slope = beta.map(|b| b / 2.0).unwrap_or_else(|| {
        let sxy: f64 = logs.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
        let sxx: f64 = logs.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        if sxx > 0.0 {
            sxy / sxx
        } else {
            0.0
        }
    });
    let intercept = mean_y - slope * mean_x;
    let residuals: Vec<f64> = logs
        .iter()
        .map(|p| p.1 - (intercept + slope * p.0))
        .collect();
    Fit {
        beta: 2.0 * slope,
        cells_per_mac16: (intercept + slope * (256f64).ln()).exp(),
        rms_log_error: (residuals.iter().map(|r| r * r).sum::<f64>() / n).sqrt(),
        max_relative_error: residuals
            .iter()
            .map(|r| (r.exp() - 1.0).abs())
            .fold(0.0, f64::max),
    }
}

impl Calibration {
    /// Reads a `calibration.json` that `qnnc calibrate` wrote with this version of the format,
    /// and checks what an estimate divides by or looks up: a point at every pair, positive
    /// cells, a positive fit.
    pub fn from_file(path: &Path) -> Result<Calibration, EnergyError> {
        let file = path.display().to_string();
        let error = |field: &str, message: String| EnergyError::Calibration {
            file: file.clone(),
            field: field.into(),
            message,
        };
        let format_error = |field: &str, message: String| EnergyError::Format {
            file: file.clone(),
            field: field.into(),
            message,
        };
        let syntax_error = |field: &str, message: String| EnergyError::Syntax {
            file: file.clone(),
            field: field.into(),
            message,
        };
        let text = crate::input::read_config(path).map_err(|e| EnergyError::Read {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| syntax_error("(top level)", format!("not JSON: {e}")))?;
        // The format and version are checked first, so that a file of another version is
        // named as such rather than by the first field that changed.
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(format_error(
                "format",
                format!("not a {FORMAT} file (write one with qnnc calibrate)"),
            ));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            other => {
                return Err(format_error(
                    "version",
                    format!(
                        "{} is not version {VERSION}; run qnnc calibrate again",
                        other.map_or("missing".to_string(), |v| v.to_string())
                    ),
                ))
            }
        }
        let calibration: Calibration = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            syntax_error(
                if path.is_empty() || path == "." {
                    "(top level)"
                } else {
                    &path
                },
                e.inner().to_string(),
            )
        })?;
        if calibration.simd == 0 {
            return Err(error("simd", "must be at least 1".into()));
        }
        if calibration.points.is_empty() {
            return Err(error("points", "holds no point".into()));
        }
        for (i, p) in calibration.points.iter().enumerate() {
            if !(1..=16).contains(&p.wbits) || !(1..=16).contains(&p.abits) {
                return Err(error(
                    &format!("points[{i}]"),
                    format!("{}x{} bits is outside 1..=16", p.wbits, p.abits),
                ));
            }
            if p.cells == 0 || p.luts + p.carries + p.flip_flops + p.dsps != p.cells {
                return Err(error(
                    &format!("points[{i}].cells"),
                    format!(
                        "{} is not the sum of its luts, carries, flip_flops and dsps, or is 0",
                        p.cells
                    ),
                ));
            }
        }
        let fit = &calibration.fit;
        if !(fit.cells_per_mac16.is_finite() && fit.cells_per_mac16 > 0.0 && fit.beta.is_finite()) {
            return Err(error(
                "fit",
                "cells_per_mac16 must be a positive number and beta finite".into(),
            ));
        }
        Ok(calibration)
    }

    /// The synthesized point at `wbits` x `abits`, if it was calibrated.
    pub fn point(&self, wbits: u32, abits: u32) -> Option<&Point> {
        self.points
            .iter()
            .find(|p| p.wbits == wbits && p.abits == abits)
    }

    /// Cells of one 16x16-bit MAC: the synthesized point if there is one, else the fit's.
    pub fn cells_per_mac16(&self) -> f64 {
        self.point(16, 16)
            .map_or(self.fit.cells_per_mac16, |p| p.cells_per_mac)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("calibration serialises") + "\n"
    }

    /// `base` with the fitted beta: the energy of a 16-bit MAC stays the profile's, its
    /// growth with the bits is measured.
    pub fn profile(&self, base: &Profile) -> Profile {
        Profile {
            name: format!("{}-calibrated-{}", base.name, self.target),
            description: format!(
                "{} with beta {:.4} fitted to the cells of qnnc's processing element ({} lanes) synthesized for {} by Yosys at {} precision pairs (qnnc calibrate)",
                base.name,
                self.fit.beta,
                self.simd,
                self.target,
                self.points.len()
            ),
            beta: self.fit.beta,
            ..base.clone()
        }
    }

    /// A table of the points and the two fits.
    pub fn to_table(&self) -> String {
        let mut text = format!(
            "processing element of {} lanes, {} adder stages, synthesized for {} ({})\n",
            self.simd, self.adder_stages, self.target, self.yosys
        );
        text += "   Qw   Qa  acc bits     luts  carries      ffs  dsps    cells  cells/MAC\n";
        for p in &self.points {
            text += &format!(
                "{:>5} {:>4} {:>9} {:>8} {:>8} {:>8} {:>5} {:>8} {:>10.2}\n",
                p.wbits,
                p.abits,
                p.accumulator_bits,
                p.luts,
                p.carries,
                p.flip_flops,
                p.dsps,
                p.cells,
                p.cells_per_mac
            );
        }
        for (what, f) in [("fitted", &self.fit), ("paper", &self.paper)] {
            text += &format!(
                "{what:>6}: beta {:.3}, {:.1} cells per 16x16-bit MAC, rms log error {:.3}, worst point off by {:.1} %\n",
                f.beta,
                f.cells_per_mac16,
                f.rms_log_error,
                100.0 * f.max_relative_error
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_an_exact_power_law_and_the_paper_form_measures_its_distance() {
        let samples: Vec<(f64, f64)> = [1.0, 4.0, 16.0, 64.0, 256.0]
            .iter()
            .map(|&x: &f64| (x, 3.0 * x.powf(0.8)))
            .collect();
        let exact = fit(&samples, None);
        assert!((exact.beta - 1.6).abs() < 1e-9, "{exact:?}");
        assert!((exact.cells_per_mac16 - 3.0 * 256f64.powf(0.8)).abs() < 1e-6);
        assert!(exact.rms_log_error < 1e-9 && exact.max_relative_error < 1e-9);
        let paper = fit(&samples, Some(PAPER_BETA));
        assert_eq!(paper.beta, PAPER_BETA);
        assert!(paper.rms_log_error > 0.1, "{paper:?}");
    }
}
