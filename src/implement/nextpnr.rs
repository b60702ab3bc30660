//! Place and route with nextpnr, and what its JSON report and log say: utilisation of each
//! kind of cell, Fmax and the critical path.

use std::collections::BTreeMap;

/// Used and available cells of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub used: u64,
    pub available: u64,
}

/// What nextpnr reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placed {
    pub utilization: BTreeMap<String, Usage>,
    /// The slowest clock's achieved frequency.
    pub fmax_mhz: Option<f64>,
    /// The start and end cell of that clock's critical path.
    pub critical_path: Option<(String, String)>,
}

/// Reads nextpnr's `--report` JSON.
pub fn parse_report(text: &str) -> Result<Placed, String> {
    let report: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("report: {e}"))?;
    let mut placed = Placed::default();
    if let Some(map) = report["utilization"].as_object() {
        for (cell, usage) in map {
            if let (Some(used), Some(available)) =
                (usage["used"].as_u64(), usage["available"].as_u64())
            {
                placed
                    .utilization
                    .insert(cell.clone(), Usage { used, available });
            }
        }
    }
    // The clock with the lowest achieved frequency (clocks sorted by name for ties).
    let slowest = report["fmax"].as_object().and_then(|clocks| {
        clocks
            .iter()
            .filter_map(|(name, v)| v["achieved"].as_f64().map(|f| (name.clone(), f)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    });
    if let Some((clock, fmax)) = slowest {
        placed.fmax_mhz = Some(fmax);
        let domain = format!("posedge {clock}");
        let path = report["critical_paths"].as_array().and_then(|paths| {
            paths
                .iter()
                .find(|p| p["from"] == domain.as_str() && p["to"] == domain.as_str())
                .or_else(|| paths.first())
        });
        if let Some(steps) = path.and_then(|p| p["path"].as_array()) {
            let endpoint = |step: Option<&serde_json::Value>, side: &str| {
                step.map(|s| {
                    let cell = s[side]["cell"].as_str().unwrap_or("?");
                    let port = s[side]["port"].as_str().unwrap_or("?");
                    format!("{cell}.{port}")
                })
            };
            if let (Some(from), Some(to)) = (
                endpoint(steps.first(), "from"),
                endpoint(steps.last(), "to"),
            ) {
                placed.critical_path = Some((from, to));
            }
        }
    }
    Ok(placed)
}

/// The "Device utilisation" table of a nextpnr log (written before placement, so also there
/// when the design does not fit).
pub fn parse_log_utilization(log: &str) -> BTreeMap<String, Usage> {
    let mut usage = BTreeMap::new();
    let Some(at) = log.rfind("Device utilisation:") else {
        return usage;
    };
    for line in log[at..].lines().skip(1) {
        let line = line.trim_start_matches("Info:").trim();
        if line.is_empty() {
            break;
        }
        // "ICESTORM_LC: 55897/ 5280  1058%"
        let Some((cell, rest)) = line.split_once(':') else {
            break;
        };
        let Some((used, rest)) = rest.split_once('/') else {
            break;
        };
        let available = rest.split_whitespace().next().unwrap_or("");
        match (used.trim().parse(), available.parse()) {
            (Ok(used), Ok(available)) => {
                usage.insert(cell.trim().to_string(), Usage { used, available });
            }
            _ => break,
        }
    }
    usage
}

/// The first ERROR line of a log, if any.
pub fn first_error(log: &str) -> Option<String> {
    log.lines()
        .find(|l| l.starts_with("ERROR"))
        .map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Info: Device utilisation:
Info: \t         ICESTORM_LC: 55897/ 5280  1058%
Info: \t        ICESTORM_RAM:     1/   30     3%
Info: \t               SB_IO:    18/   96    18%
Info: \t        ICESTORM_DSP:     0/    8     0%

Info: Placed 18 cells based on constraints.
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'
";

    #[test]
    fn utilisation_is_read_from_a_failed_log() {
        let usage = parse_log_utilization(LOG);
        assert_eq!(
            usage["ICESTORM_LC"],
            Usage {
                used: 55897,
                available: 5280
            }
        );
        assert_eq!(usage["ICESTORM_RAM"].used, 1);
        assert_eq!(usage.len(), 4);
        assert!(first_error(LOG).unwrap().contains("no BELs remaining"));
    }

    #[test]
    fn fmax_and_the_critical_path_of_the_slowest_clock_are_read() {
        let report = r#"{
          "fmax": {"clk$glb": {"achieved": 65.28267669677734, "constraint": 30}},
          "utilization": {"ICESTORM_LC": {"available": 5280, "used": 53}},
          "critical_paths": [
            {"from": "<async>", "to": "posedge clk$glb", "path": [
              {"from": {"cell": "in", "port": "O"}, "to": {"cell": "x", "port": "I"}}]},
            {"from": "posedge clk$glb", "to": "posedge clk$glb", "path": [
              {"from": {"cell": "a", "port": "Q"}, "to": {"cell": "b", "port": "I0"}},
              {"from": {"cell": "b", "port": "O"}, "to": {"cell": "c", "port": "D"}}]}
          ]}"#;
        let placed = parse_report(report).unwrap();
        assert!((placed.fmax_mhz.unwrap() - 65.2827).abs() < 1e-3);
        assert_eq!(
            placed.critical_path,
            Some(("a.Q".to_string(), "c.D".to_string()))
        );
        assert_eq!(placed.utilization["ICESTORM_LC"].used, 53);
    }
}
