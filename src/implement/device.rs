//! The implementation targets: what each device holds, its pins, and its default clock.

use std::collections::BTreeMap;

use clap::ValueEnum;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Yosys `synth`: generic cells, resources only
    Generic,
    /// Lattice iCE40 UP5K-SG48: Yosys `synth_ice40`, nextpnr-ice40, icepack
    Up5k,
    /// Lattice ECP5 LFE5U-85F (CABGA381): Yosys `synth_ecp5`, nextpnr-ecp5
    #[value(name = "ecp5-85k")]
    Ecp5_85k,
    /// Xilinx 7-series (capacity of an XC7A100T): Yosys `synth_xilinx`, resources only
    Xc7,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Generic => "generic",
            Target::Up5k => "up5k",
            Target::Ecp5_85k => "ecp5-85k",
            Target::Xc7 => "xc7",
        }
    }

    /// Whether the target is placed and routed (and so has a clock constraint and an Fmax).
    pub fn places(self) -> bool {
        matches!(self, Target::Up5k | Target::Ecp5_85k)
    }

    /// The clock constraint when none is given.
    pub fn default_clock_mhz(self) -> Option<f64> {
        match self {
            Target::Up5k => Some(30.0),
            Target::Ecp5_85k => Some(50.0),
            Target::Generic | Target::Xc7 => None,
        }
    }

    /// The Yosys command that synthesizes for this target.
    pub fn synth_command(self) -> &'static str {
        match self {
            Target::Generic => "synth",
            Target::Up5k => "synth_ice40",
            Target::Ecp5_85k => "synth_ecp5",
            Target::Xc7 => "synth_xilinx",
        }
    }

    /// The folder of the cell simulation models under Yosys's data folder.
    pub fn cell_library(self) -> Option<&'static str> {
        match self {
            Target::Generic => None,
            Target::Up5k => Some("ice40"),
            Target::Ecp5_85k => Some("ecp5"),
            Target::Xc7 => Some("xilinx"),
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::value_variants()
            .iter()
            .copied()
            .find(|t| t.name() == name)
    }

    pub fn device(self) -> Option<Device> {
        match self {
            Target::Generic => None,
            Target::Up5k => Some(UP5K),
            Target::Ecp5_85k => Some(ECP5_85K),
            Target::Xc7 => Some(XC7A100T),
        }
    }
}

/// What a device holds. `logic_cells` is the iCE40's unit (a LUT4, a flip-flop and a carry);
/// the others count LUTs. Block RAMs are counted in the family's unit (`bram_unit`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Device {
    pub name: &'static str,
    #[serde(skip)]
    pub family: Family,
    pub logic_cells: Option<u64>,
    pub luts: Option<u64>,
    pub ffs: u64,
    pub brams: u64,
    pub bram_unit: &'static str,
    pub bram_bits: u64,
    /// Single-port RAM without initial contents (iCE40 SPRAM), in bits.
    pub spram_bits: u64,
    pub dsps: u64,
    pub io: u64,
    /// Bits of ROM one LUT holds.
    #[serde(skip)]
    pub lut_bits: u64,
    /// Pins of the package the board top uses, in the order they are handed out: the clock
    /// (a global clock pin) first, then the reset, then the streams.
    #[serde(skip)]
    pub pins: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ice40,
    Ecp5,
    Xilinx7,
}

/// iCE40 UP5K in the SG48 package: 36 general-purpose pins (and 3 open-drain RGB pins).
/// The clock is on pin 35 (IOT_46b_G0), as on the iCEBreaker board; the streams use the
/// pins of its PMOD connectors, avoiding the SPI flash pins 14-17.
pub const UP5K: Device = Device {
    name: "iCE40UP5K-SG48",
    family: Family::Ice40,
    logic_cells: Some(5280),
    luts: Some(5280),
    ffs: 5280,
    brams: 30,
    bram_unit: "SB_RAM40_4K (4 kbit)",
    bram_bits: 30 * 4096,
    spram_bits: 4 * 256 * 1024,
    dsps: 8,
    io: 39,
    lut_bits: 16,
    pins: &[
        "35", "10", "43", "38", "4", "2", "47", "45", "3", "48", "46", "44", "34", "31", "27",
        "25", "21", "19", "26", "23", "20", "18", "42", "36", "32", "28", "13", "12", "11", "9",
        "6", "37",
    ],
};

/// Lattice LFE5U-85F in the CABGA381 package (speed grade 6). Pins as on the ULX3S board: the
/// 25 MHz oscillator's G2, button FIRE1 (R1, active high) as reset, the GPIO header for the
/// streams.
pub const ECP5_85K: Device = Device {
    name: "LFE5U-85F-6BG381C",
    family: Family::Ecp5,
    logic_cells: None,
    luts: Some(83640),
    ffs: 83640,
    brams: 208,
    bram_unit: "DP16KD (18 kbit)",
    bram_bits: 208 * 18 * 1024,
    spram_bits: 0,
    dsps: 156,
    io: 205,
    lut_bits: 16,
    pins: &[
        "G2", "R1", "B11", "C11", "A10", "A11", "A9", "B10", "B9", "C10", "A7", "A8", "C8", "B8",
        "C6", "C7", "A6", "B6", "A4", "A5", "A2", "B1", "C4", "B4", "F4", "E3", "G3", "F3", "H4",
        "G5", "U18", "U17", "N17", "P16", "N16", "M17", "L16", "L17", "H18", "H17", "F17", "G18",
        "D18", "E17", "C18", "D17", "B15", "C15", "B17", "C17", "C16", "D16", "D14", "E14", "B13",
        "C13", "D13", "E13",
    ],
};

/// The Xilinx 7-series part whose capacity `xc7` is checked against: an Artix-7 XC7A100T
/// (CSG324), as on the Arty A7-100T and Nexys A7 boards. Block RAMs in RAMB18 units (a
/// RAMB36 counts as two). No pins: nothing is placed.
pub const XC7A100T: Device = Device {
    name: "XC7A100T-CSG324",
    family: Family::Xilinx7,
    logic_cells: None,
    luts: Some(63400),
    ffs: 126800,
    brams: 270,
    bram_unit: "RAMB18 (a RAMB36 counts 2)",
    bram_bits: 270 * 18 * 1024,
    spram_bits: 0,
    dsps: 240,
    io: 210,
    lut_bits: 64,
    pins: &[],
};

/// The memories a design needs that must be initialised at configuration (read-only:
/// weights, thresholds, requantization, descriptors) and the others.
pub fn is_rom(what: &str) -> bool {
    !matches!(what, "pixels" | "activations" | "windows")
}

impl Device {
    /// The LUTs (one in each iCE40 logic cell) of the device.
    pub fn logic(&self) -> u64 {
        self.luts.or(self.logic_cells).unwrap_or(0)
    }

    /// What cannot fit whatever synthesis does: initialised memory beyond what the block
    /// RAMs, the LUTs (as ROM) and the flip-flops hold together, or memory beyond that plus
    /// the RAMs without initial contents. Each entry says what overflowed.
    pub fn memory_overflow(&self, bits: &BTreeMap<&'static str, u64>) -> Vec<String> {
        let rom: u64 = bits.iter().filter(|(k, _)| is_rom(k)).map(|(_, v)| v).sum();
        let all: u64 = bits.values().sum();
        let initialised = self.bram_bits + self.logic() * self.lut_bits + self.ffs;
        let mut overflow = Vec::new();
        if rom > initialised {
            overflow.push(format!(
                "needs {rom} bits of initialised memory (weights and parameters) but holds at most {initialised} (block RAM, LUTs and flip-flops together)"
            ));
        } else if all > initialised + self.spram_bits {
            overflow.push(format!(
                "needs {all} memory bits but holds at most {} (all RAMs, LUTs and flip-flops together)",
                initialised + self.spram_bits
            ));
        }
        overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_round_trip() {
        for &t in Target::value_variants() {
            assert_eq!(Target::from_name(t.name()), Some(t));
            let value = t.to_possible_value().unwrap();
            assert_eq!(value.get_name(), t.name());
        }
    }

    #[test]
    fn pins_are_unique() {
        for device in [UP5K, ECP5_85K] {
            let mut pins = device.pins.to_vec();
            pins.sort();
            pins.dedup();
            assert_eq!(pins.len(), device.pins.len(), "{}", device.name);
        }
        assert!(UP5K.pins.len() <= 36);
    }

    #[test]
    fn a_large_rom_does_not_fit_the_up5k() {
        let bits = BTreeMap::from([("weights", 2_000_000), ("activations", 10_000)]);
        let overflow = UP5K.memory_overflow(&bits);
        assert_eq!(overflow.len(), 1);
        assert!(overflow[0].contains("needs 2000000 bits"), "{overflow:?}");
        assert!(ECP5_85K.memory_overflow(&bits).is_empty());
    }
}
