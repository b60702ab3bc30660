//! Synthesis with Yosys: generic cells (`synth`) or a Lattice iCE40 (`synth_ice40`), and the
//! resources it reports.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::Command;

use crate::commands::compile::SynthTarget;
use crate::sim::{require, rtl_sources, SimError};

/// Cells by type, and the counts a hardware engineer looks at first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthReport {
    pub target: SynthTarget,
    pub cells: BTreeMap<String, u64>,
    pub flip_flops: u64,
    pub latches: u64,
    pub memory_bits: u64,
}

impl fmt::Display for SynthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.cells.values().sum();
        writeln!(
            f,
            "yosys {:?}: {total} cells, {} flip-flops, {} latches, {} memory bits",
            self.target, self.flip_flops, self.latches, self.memory_bits
        )?;
        if self.target == SynthTarget::Ice40 {
            let count = |prefix: &str| -> u64 {
                self.cells
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(_, v)| v)
                    .sum()
            };
            writeln!(
                f,
                "  LUTs {}, carries {}, flip-flops {}, block RAMs {}",
                count("SB_LUT4"),
                count("SB_CARRY"),
                count("SB_DFF"),
                count("SB_RAM40_4K")
            )?;
        }
        for (cell, count) in &self.cells {
            writeln!(f, "  {cell:<24} {count}")?;
        }
        Ok(())
    }
}

/// Synthesizes the build folder's top module and reads Yosys's statistics.
pub fn synthesize(dir: &Path, top: &str, target: SynthTarget) -> Result<SynthReport, SimError> {
    require("yosys", "yosys")?;
    let sources = rtl_sources(dir)?;
    let synth = match target {
        SynthTarget::Generic => format!("synth -top {top}"),
        SynthTarget::Ice40 => format!("synth_ice40 -top {top}"),
    };
    let script = format!("read_verilog -defer {}; {synth}; stat", sources.join(" "));
    let output = Command::new("yosys")
        .args(["-q", "-p", &script, "-l", "synth.log"])
        .current_dir(dir)
        .output()
        .map_err(|e| SimError::ToolFailed {
            dir: dir.display().to_string(),
            tool: "yosys",
            message: e.to_string(),
        })?;
    let log = std::fs::read_to_string(dir.join("synth.log")).unwrap_or_default();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr
            .lines()
            .chain(log.lines())
            .find(|l| l.contains("ERROR"))
            .unwrap_or("failed")
            .trim()
            .to_string();
        return Err(SimError::ToolFailed {
            dir: dir.display().to_string(),
            tool: "yosys",
            message: line,
        });
    }
    Ok(parse_stat(&log, target))
}

/// The cell counts of the last `stat` in a Yosys log.
pub fn parse_stat(log: &str, target: SynthTarget) -> SynthReport {
    let last = log.rfind("Number of cells:").map_or("", |at| &log[at..]);
    let mut cells = BTreeMap::new();
    let mut memory_bits = 0;
    for line in last.lines().skip(1) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [name, count] if name.starts_with('$') || name.starts_with("SB_") => {
                if let Ok(n) = count.parse::<u64>() {
                    cells.insert(name.to_string(), n);
                }
            }
            ["Number", "of", "memory", "bits:", n] => memory_bits = n.parse().unwrap_or(0),
            [] => {}
            _ if line.trim_start().starts_with("Chip area") => break,
            _ => {}
        }
    }
    let count = |pred: &dyn Fn(&str) -> bool| -> u64 {
        cells.iter().filter(|(k, _)| pred(k)).map(|(_, v)| v).sum()
    };
    let flip_flops =
        count(&|k| k.contains("DFF") || k.starts_with("$_SDFF") || k.starts_with("$_DFFE"));
    let latches = count(&|k| k.contains("DLATCH") || k.contains("LATCH"));
    SynthReport {
        target,
        cells,
        flip_flops,
        latches,
        memory_bits,
    }
}
