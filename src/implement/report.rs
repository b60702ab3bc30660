//! `implementation/report.json`: resources, fit, Fmax and throughput of one target, with the
//! device's capacity beside them; and the summary `qnnc compile` prints.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::device::Device;

/// The report's keys, in this order, for every target; figures a target has no way to know
/// are null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub target: String,
    /// The design's top module (the board top wraps it on device targets).
    pub top: String,
    pub fits: bool,
    /// What overflowed, one entry each ("logic cells: needs 55897 of 5280").
    pub overflow: Vec<String>,
    /// iCE40 logic cells (LUT4 + flip-flop + carry), as nextpnr packed them.
    pub logic_cells: Option<u64>,
    pub luts: Option<u64>,
    pub ffs: Option<u64>,
    /// Block RAMs in the device's unit (`available.bram_unit`).
    pub brams: Option<u64>,
    pub dsps: Option<u64>,
    pub io: Option<u64>,
    /// All cells after synthesis, and the latches Yosys inferred (should be none).
    pub cells: u64,
    pub latches: u64,
    /// Memory bits of the design as the compiler sized them.
    pub memory_bits: u64,
    /// The device and what it holds (null for the generic target).
    pub available: Option<Available>,
    pub clock_mhz: Option<f64>,
    pub fmax_mhz: Option<f64>,
    pub timing_met: Option<bool>,
    pub cycles_per_inference: u64,
    pub inferences_per_s: Option<f64>,
    pub critical_path: Option<CriticalPath>,
    /// The bitstream written, relative to the build folder.
    pub bitstream: Option<String>,
    /// The version line of each tool that ran.
    pub tools: BTreeMap<String, String>,
    /// What the flow decided on the way (e.g. multipliers built from logic).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Available {
    pub device: String,
    pub logic_cells: Option<u64>,
    pub luts: Option<u64>,
    pub ffs: u64,
    pub brams: u64,
    pub bram_unit: String,
    pub bram_bits: u64,
    pub dsps: u64,
    pub io: u64,
}

impl From<&Device> for Available {
    fn from(d: &Device) -> Self {
        Available {
            device: d.name.into(),
            logic_cells: d.logic_cells,
            luts: d.luts,
            ffs: d.ffs,
            brams: d.brams,
            bram_unit: d.bram_unit.into(),
            bram_bits: d.bram_bits,
            dsps: d.dsps,
            io: d.io,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriticalPath {
    pub from: String,
    pub to: String,
}

/// Rounds a figure for the report, so that it reads well and compares exactly.
pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serialises") + "\n"
    }

    /// Resources as "used of available" pairs, in the order the summary prints them.
    fn usage(&self) -> Vec<(&'static str, u64, Option<u64>)> {
        let a = self.available.as_ref();
        let mut rows = Vec::new();
        if let Some(used) = self.logic_cells {
            rows.push(("logic cells", used, a.and_then(|a| a.logic_cells)));
        }
        if let Some(used) = self.luts {
            rows.push(("LUTs", used, a.and_then(|a| a.luts)));
        }
        if let Some(used) = self.ffs {
            rows.push(("flip-flops", used, a.map(|a| a.ffs)));
        }
        if let Some(used) = self.brams {
            rows.push(("block RAMs", used, a.map(|a| a.brams)));
        }
        if let Some(used) = self.dsps {
            rows.push(("DSPs", used, a.map(|a| a.dsps)));
        }
        if let Some(used) = self.io {
            rows.push(("I/O", used, a.map(|a| a.io)));
        }
        rows
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let device = self
            .available
            .as_ref()
            .map_or(String::new(), |a| format!(" ({})", a.device));
        let verdict = if self.fits { "fits" } else { "does not fit" };
        writeln!(f, "{}{device}: {verdict}", self.target)?;
        let usage: Vec<String> = self
            .usage()
            .into_iter()
            .map(|(what, used, available)| match available {
                Some(a) => format!("{what} {used} of {a}"),
                None => format!("{what} {used}"),
            })
            .collect();
        if !usage.is_empty() {
            writeln!(f, "  {}", usage.join(", "))?;
        }
        for overflow in &self.overflow {
            writeln!(f, "  overflow: {overflow}")?;
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        match (self.fmax_mhz, self.clock_mhz) {
            (Some(fmax), Some(clock)) => {
                let met = if self.timing_met == Some(true) {
                    "met"
                } else {
                    "NOT met"
                };
                write!(f, "  Fmax {fmax:.2} MHz, constraint {clock} MHz: {met}")?;
                if let Some(path) = &self.critical_path {
                    write!(f, "; critical path {} -> {}", path.from, path.to)?;
                }
                writeln!(f)?;
            }
            (None, Some(clock)) => writeln!(f, "  constraint {clock} MHz: not routed")?,
            _ => {}
        }
        match self.inferences_per_s {
            Some(rate) => writeln!(
                f,
                "  {} cycles per inference: {rate:.0} inferences/s at Fmax",
                self.cycles_per_inference
            ),
            None => writeln!(
                f,
                "  {} cycles per inference (no Fmax without place and route)",
                self.cycles_per_inference
            ),
        }
    }
}
