//! Gate-level simulation: the netlist that synthesis wrote (`implementation/netlist.v`, its
//! design top with the same ports as the RTL's), the cell models Yosys ships for the target's
//! family, and the build's own testbench with `QNNC_NETLIST` defined (the testbench leaves out
//! what reaches into the RTL's hierarchy: per-layer cycles and the write trace).

use std::path::Path;

use super::{Bench, SimError};
use crate::implement::{self, tools, Target};

/// The macro the testbench sees when it drives a netlist.
pub const DEFINE: &str = "QNNC_NETLIST";

/// The netlist's bench, and the target it was synthesized for.
pub fn bench(dir: &Path) -> Result<(Bench, Target), SimError> {
    let files = |message: String| SimError::Files {
        dir: dir.display().to_string(),
        message,
    };
    let report = implement::read_report(dir).map_err(|e| match e {
        implement::ImplementError::Files { message, .. } => files(message),
        other => files(other.to_string()),
    })?;
    let target = Target::from_name(&report.target).ok_or_else(|| {
        files(format!(
            "{}/report.json: unknown target {}",
            implement::FOLDER,
            report.target
        ))
    })?;
    let netlist = format!("{}/netlist.v", implement::FOLDER);
    if !dir.join(&netlist).is_file() {
        return Err(files(format!("no {netlist}: compile with --target again")));
    }
    let testbench = crate::input::read_text_inside(dir, "tb/testbench.v", crate::input::BUILD_FILE)
        .map_err(|e| files(format!("tb/testbench.v: {e}")))?;
    if testbench.contains("dut.") && !testbench.contains(DEFINE) {
        return Err(files(format!(
            "tb/testbench.v reaches into the RTL's hierarchy without `ifndef {DEFINE} guards, so it cannot drive a netlist"
        )));
    }
    let netlist_text = crate::input::read_text_inside(dir, &netlist, crate::input::BUILD_FILE)
        .map_err(|e| files(format!("{netlist}: {e}")))?;
    let opaque: Vec<&str> = opaque_cells(target)
        .iter()
        .copied()
        .filter(|cell| instantiates(&netlist_text, cell))
        .collect();
    if !opaque.is_empty() {
        return Err(files(format!(
            "the {} netlist uses {}, whose Yosys cell models have no behaviour to simulate; the gate-level check runs for up5k and generic",
            target.name(),
            opaque.join(", ")
        )));
    }
    let yosys = tools::debian("yosys", "yosys").map_err(|e| files(e.to_string()))?;
    let mut sources = vec!["tb/testbench.v".to_string(), netlist];
    let mut defines = vec![DEFINE.to_string()];
    if let Some(library) = target.cell_library() {
        let datdir = tools::yosys_datdir(&yosys).ok_or_else(|| {
            files(
                "cannot find Yosys's data folder with the cell models (yosys-config --datdir)"
                    .into(),
            )
        })?;
        let models = datdir.join(library).join("cells_sim.v");
        if !models.is_file() {
            return Err(files(format!(
                "Yosys's cell models {} are missing",
                models.display()
            )));
        }
        sources.push(models.display().to_string());
        if target == Target::Up5k {
            // Default port values in the iCE40 models are SystemVerilog Icarus refuses; the
            // netlist drives every port anyway.
            defines.push("NO_ICE40_DEFAULT_ASSIGNMENTS".into());
        }
    }
    Ok((
        Bench {
            sources,
            defines,
            verilator_dir: "obj_dir_netlist",
            icarus_file: "sim/netlist.vvp",
            trace: false,
        },
        target,
    ))
}

/// Cells whose models Yosys ships as black boxes or as timing only (its ECP5 block RAM and
/// multiplier, Xilinx block RAMs): a netlist with them cannot be simulated.
fn opaque_cells(target: Target) -> &'static [&'static str] {
    match target {
        Target::Ecp5_85k => &["DP16KD", "PDPW16KD", "MULT18X18D", "ALU54B"],
        Target::Xc7 => &["RAMB18E1", "RAMB36E1"],
        Target::Generic | Target::Up5k => &[],
    }
}

/// Whether a Verilog netlist instantiates `cell` (a line that starts with its name).
fn instantiates(netlist: &str, cell: &str) -> bool {
    netlist.lines().any(|line| {
        let line = line.trim_start();
        line.strip_prefix(cell).is_some_and(|rest| {
            rest.starts_with(' ') || rest.starts_with('#') || rest.starts_with('(')
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_found_by_cell_name() {
        let netlist = "  RAMB18E1 #(\n    .DOA_REG(0)\n  ) mem (\n  RAMB18E1_x y;\n";
        assert!(instantiates(netlist, "RAMB18E1"));
        assert!(!instantiates(netlist, "RAMB36E1"));
        assert!(!instantiates("  RAMB36E1_like x ();\n", "RAMB36E1"));
    }
}
