//! Synthesis with Yosys and what its statistics say: cells by type, and the LUTs, flip-flops,
//! block RAMs and DSPs of each family.

use std::collections::BTreeMap;
use std::path::Path;

use super::device::{Family, Target};
use super::tools::Tool;
use super::{run_logged, ImplementError, BOARD_TOP};

/// The cell counts of a synthesized design (every module of the hierarchy together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub cells: BTreeMap<String, u64>,
    /// Memory bits Yosys left as memories (not mapped to RAM primitives or flip-flops).
    pub memory_bits: u64,
    /// Latches Yosys inferred from the processes.
    pub latches: u64,
}

/// Resources in the units of the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub luts: Option<u64>,
    pub ffs: u64,
    pub brams: u64,
    pub dsps: u64,
    pub carries: u64,
}

impl Stat {
    pub fn total(&self) -> u64 {
        self.cells.values().sum()
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.cells
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(_, v)| v)
            .sum()
    }

    fn weighted(&self, weights: &[(&str, u64)]) -> u64 {
        weights
            .iter()
            .map(|(cell, w)| self.cells.get(*cell).copied().unwrap_or(0) * w)
            .sum()
    }

    /// Flip-flops of generic synthesis: every internal cell with a DFF in its name.
    pub fn generic_flip_flops(&self) -> u64 {
        self.count(|k| k.starts_with('$') && k.contains("DFF"))
    }

    pub fn resources(&self, family: Option<Family>) -> Resources {
        match family {
            None => Resources {
                luts: None,
                ffs: self.generic_flip_flops(),
                brams: 0,
                dsps: self.count(|k| k == "$mul" || k == "$__mul"),
                carries: 0,
            },
            Some(Family::Ice40) => Resources {
                luts: Some(self.count(|k| k == "SB_LUT4")),
                ffs: self.count(|k| k.starts_with("SB_DFF")),
                brams: self.count(|k| k.starts_with("SB_RAM40_4K")),
                dsps: self.count(|k| k == "SB_MAC16"),
                carries: self.count(|k| k == "SB_CARRY"),
            },
            Some(Family::Ecp5) => Resources {
                // A CCU2C is two LUT4s of a slice; distributed RAM takes LUTs as well.
                luts: Some(self.weighted(&[("LUT4", 1), ("CCU2C", 2), ("TRELLIS_DPR16X4", 2)])),
                ffs: self.count(|k| k == "TRELLIS_FF"),
                brams: self.count(|k| k == "DP16KD" || k == "PDPW16KD"),
                dsps: self.count(|k| k == "MULT18X18D" || k == "ALU54B"),
                carries: self.count(|k| k == "CCU2C"),
            },
            Some(Family::Xilinx7) => Resources {
                // LUTs as logic, as distributed RAM and as shift registers, as Vivado counts.
                luts: Some(
                    self.count(|k| k.starts_with("LUT") && k.len() == 4)
                        + self.weighted(&[
                            ("LUT6_2", 1),
                            ("SRL16E", 1),
                            ("SRLC32E", 1),
                            ("RAM32X1S", 1),
                            ("RAM64X1S", 1),
                            ("RAM32X1D", 2),
                            ("RAM64X1D", 2),
                            ("RAM128X1S", 2),
                            ("RAM128X1D", 4),
                            ("RAM256X1S", 4),
                            ("RAM32M", 4),
                            ("RAM64M", 4),
                        ]),
                ),
                ffs: self.count(|k| matches!(k, "FDRE" | "FDSE" | "FDCE" | "FDPE")),
                brams: self.weighted(&[("RAMB18E1", 1), ("RAMB36E1", 2)]),
                dsps: self.count(|k| k == "DSP48E1"),
                carries: self.count(|k| k == "CARRY4"),
            },
        }
    }
}

/// The Yosys script of a target. Device targets synthesize the board top with the design's
/// top kept as a module of its own, so that one netlist serves both place and route (the
/// board top) and gate-level simulation (the design top, with all its ports). With `dsp`
/// false, multipliers are built from logic instead of DSP blocks.
pub fn script(target: Target, top: &str, sources: &[String], stage: &str, dsp: bool) -> String {
    let read = format!("read_verilog -defer {}", sources.join(" "));
    let netlist = format!("write_verilog -noattr {stage}/netlist.v");
    match target {
        Target::Generic => format!("{read}; synth -top {top}; stat; {netlist}"),
        _ => {
            let synth = match (target, dsp) {
                (Target::Up5k, true) => {
                    format!("synth_ice40 -top {BOARD_TOP} -dsp -spram -json {stage}/netlist.json")
                }
                (Target::Up5k, false) => {
                    format!("synth_ice40 -top {BOARD_TOP} -spram -json {stage}/netlist.json")
                }
                (Target::Ecp5_85k, true) => {
                    format!("synth_ecp5 -top {BOARD_TOP} -json {stage}/netlist.json")
                }
                (Target::Ecp5_85k, false) => {
                    format!("synth_ecp5 -top {BOARD_TOP} -nodsp -json {stage}/netlist.json")
                }
                (_, true) => format!("synth_xilinx -top {BOARD_TOP} -family xc7 -flatten"),
                (_, false) => {
                    format!("synth_xilinx -top {BOARD_TOP} -family xc7 -flatten -nodsp")
                }
            };
            format!(
                "{read} {stage}/board.v; hierarchy -top {BOARD_TOP}; \
                 setattr -mod -set keep_hierarchy 1 {top}; {synth}; stat; {netlist}"
            )
        }
    }
}

/// Runs Yosys in the build folder and reads the statistics of its log.
pub fn synthesize(
    yosys: &Tool,
    dir: &Path,
    stage: &Path,
    stage_name: &str,
    script: &str,
) -> Result<Stat, ImplementError> {
    let log = stage.join("yosys.log");
    let log_name = format!("{stage_name}/yosys.log");
    run_logged(
        yosys,
        dir,
        &log,
        yosys
            .command()
            .args(["-q", "-l", &log_name, "-p", script])
            .current_dir(dir),
    )?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    Ok(parse_stat(&text))
}

/// The cell counts of the last `stat` in a Yosys log: the design hierarchy's totals when there
/// is more than one module.
pub fn parse_stat(log: &str) -> Stat {
    let section = log
        .rfind("=== design hierarchy ===")
        .or_else(|| log.rfind("Number of cells:"))
        .map_or("", |at| &log[at..]);
    let mut cells = BTreeMap::new();
    let mut memory_bits = 0;
    let mut in_cells = false;
    for line in section.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Number", "of", "memory", "bits:", n] => memory_bits = n.parse().unwrap_or(0),
            ["Number", "of", "cells:", _] => in_cells = true,
            [name, count] if in_cells => match count.parse::<u64>() {
                Ok(n) => {
                    cells.insert(name.to_string(), n);
                }
                Err(_) => break,
            },
            _ if in_cells => break,
            _ => {}
        }
    }
    let latches = log
        .lines()
        .filter(|l| l.contains("Latch inferred for"))
        .count() as u64;
    Stat {
        cells,
        memory_bits,
        latches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
=== board ===

   Number of cells:                 16
     SB_CARRY                        2
     SB_LUT4                         7

=== design hierarchy ===

   board                             1
     tiny_cnn_top                    1

   Number of wires:                 38
   Number of memory bits:          128
   Number of processes:              0
   Number of cells:              62809
     SB_CARRY                     2280
     SB_DFF                         14
     SB_DFFE                     18264
     SB_LUT4                     41954
     SB_MAC16                        2
     SB_RAM40_4K                     1

End of script.
";

    #[test]
    fn the_hierarchy_totals_are_read() {
        let stat = parse_stat(LOG);
        assert_eq!(stat.total(), 62515);
        assert_eq!(stat.memory_bits, 128);
        let r = stat.resources(Some(Family::Ice40));
        assert_eq!(r.luts, Some(41954));
        assert_eq!(r.ffs, 18278);
        assert_eq!(r.brams, 1);
        assert_eq!(r.dsps, 2);
        assert_eq!(r.carries, 2280);
    }

    #[test]
    fn a_single_module_stat_is_read() {
        let log = "Number of cells: 5\n  $_AND_ 3\n  $_DFF_P_ 2\n\nChip area 1\n";
        let stat = parse_stat(log);
        assert_eq!(stat.total(), 5);
        assert_eq!(stat.generic_flip_flops(), 2);
        assert_eq!(stat.latches, 0);
    }

    #[test]
    fn xilinx_block_rams_count_in_ramb18_units() {
        let mut stat = Stat::default();
        stat.cells.insert("RAMB36E1".into(), 3);
        stat.cells.insert("RAMB18E1".into(), 1);
        stat.cells.insert("LUT6".into(), 10);
        stat.cells.insert("RAM64M".into(), 1);
        let r = stat.resources(Some(Family::Xilinx7));
        assert_eq!(r.brams, 7);
        assert_eq!(r.luts, Some(14));
    }
}
