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
    let testbench = std::fs::read_to_string(dir.join("tb/testbench.v"))
        .map_err(|e| files(format!("tb/testbench.v: {e}")))?;
    if testbench.contains("dut.") && !testbench.contains(DEFINE) {
        return Err(files(format!(
            "tb/testbench.v reaches into the RTL's hierarchy without `ifndef {DEFINE} guards, so it cannot drive a netlist"
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
        },
        target,
    ))
}
