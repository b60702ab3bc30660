//! The board top (the design behind a few pins) and its pin constraints, rendered from the
//! templates in templates/fpga with a context computed here.

use std::collections::BTreeMap;

use handlebars::Handlebars;
use serde::Serialize;

use super::device::{Device, Family};
use super::ImplementError;

const BOARD_TEMPLATE: &str = include_str!("../../templates/fpga/board.v.hbs");
const PCF_TEMPLATE: &str = include_str!("../../templates/fpga/up5k.pcf.hbs");
const LPF_TEMPLATE: &str = include_str!("../../templates/fpga/ecp5.lpf.hbs");

/// Cycles the core is held in reset after configuration: 2^(POR_BITS - 1).
const POR_BITS: usize = 4;

#[derive(Debug, Clone, Serialize)]
pub struct Pin {
    pub name: String,
    pub site: String,
}

#[derive(Serialize)]
struct Context<'a> {
    header: &'a str,
    device: &'a str,
    top: &'a str,
    class_bits: usize,
    class_msb: usize,
    por_bits: usize,
    por_msb: usize,
    reset_cycles: usize,
    pins: usize,
    clock_mhz: String,
}

#[derive(Serialize)]
struct PinContext<'a> {
    header: &'a str,
    device: &'a str,
    clock_mhz: String,
    pins: &'a [Pin],
}

/// The board top's ports, bit by bit, in the order pins are handed out.
pub fn port_bits(class_bits: usize) -> Vec<String> {
    let mut names: Vec<String> = ["clk", "rst", "in_valid", "in_ready"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.extend((0..8).map(|b| format!("in_pixel[{b}]")));
    names.push("out_valid".into());
    names.push("out_ready".into());
    names.extend((0..class_bits).map(|b| format!("out_class[{b}]")));
    names
}

/// Each port bit on a pin of the device, or what overflowed.
pub fn assign_pins(device: &Device, class_bits: usize) -> Result<Vec<Pin>, String> {
    let bits = port_bits(class_bits);
    if device.pins.is_empty() {
        return Ok(Vec::new());
    }
    if bits.len() > device.pins.len() {
        return Err(format!(
            "needs {} of {} I/O pins",
            bits.len(),
            device.pins.len()
        ));
    }
    Ok(bits
        .into_iter()
        .zip(device.pins)
        .map(|(name, site)| Pin {
            name,
            site: site.to_string(),
        })
        .collect())
}

/// The clock as a constraint file writes it: no trailing zeros.
pub fn format_mhz(mhz: f64) -> String {
    let text = format!("{mhz:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The board top's Verilog and, for placed targets, its constraints file (name and text).
pub fn render(
    device: &Device,
    top: &str,
    class_bits: usize,
    pins: &[Pin],
    clock_mhz: Option<f64>,
    header: &str,
) -> Result<BTreeMap<String, String>, ImplementError> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(handlebars::no_escape);
    let clock = clock_mhz.map(format_mhz).unwrap_or_default();
    fn render<T: Serialize>(
        registry: &Handlebars,
        template: &str,
        context: &T,
    ) -> Result<String, ImplementError> {
        registry
            .render_template(template, context)
            .map_err(|e| ImplementError::Template(e.to_string()))
    }
    let board = Context {
        header,
        device: device.name,
        top,
        class_bits,
        class_msb: class_bits - 1,
        por_bits: POR_BITS,
        por_msb: POR_BITS - 1,
        reset_cycles: 1 << (POR_BITS - 1),
        pins: port_bits(class_bits).len(),
        clock_mhz: clock.clone(),
    };
    let mut files = BTreeMap::new();
    files.insert(
        "board.v".to_string(),
        render(&registry, BOARD_TEMPLATE, &board)?,
    );
    let constraints = PinContext {
        header,
        device: device.name,
        clock_mhz: clock,
        pins,
    };
    match device.family {
        Family::Ice40 => {
            files.insert(
                "board.pcf".into(),
                render(&registry, PCF_TEMPLATE, &constraints)?,
            );
        }
        Family::Ecp5 => {
            files.insert(
                "board.lpf".into(),
                render(&registry, LPF_TEMPLATE, &constraints)?,
            );
        }
        Family::Xilinx7 => {}
    }
    Ok(files)
}

/// The width of each port of `module` in a Verilog source (ANSI port list, `[msb:0]` ranges).
pub fn port_widths(source: &str, module: &str) -> BTreeMap<String, usize> {
    let mut widths = BTreeMap::new();
    let header = format!("module {module}");
    let Some(start) = source.find(&header) else {
        return widths;
    };
    let rest = &source[start + header.len()..];
    let end = rest.find(");").unwrap_or(rest.len());
    for declaration in rest[..end].split(',') {
        let line: String = declaration
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ");
        let words: Vec<&str> = line
            .split_whitespace()
            .map(|w| w.trim_start_matches('('))
            .filter(|w| !w.is_empty())
            .collect();
        if !matches!(words.first(), Some(&"input") | Some(&"output")) {
            continue;
        }
        let Some(name) = words.last() else { continue };
        let range = words.iter().find(|w| w.starts_with('['));
        let width = match range {
            None => 1,
            Some(r) => r
                .trim_matches(|c| c == '[' || c == ']')
                .split_once(':')
                .and_then(|(msb, lsb)| {
                    Some(msb.parse::<usize>().ok()? + 1 - lsb.parse::<usize>().ok()?)
                })
                .unwrap_or(0),
        };
        widths.insert(name.to_string(), width);
    }
    widths
}

#[cfg(test)]
mod tests {
    use super::super::device::{ECP5_85K, UP5K};
    use super::*;

    const TOP: &str = "\
// header
module tiny_cnn_top (
    input  wire        clk,
    input  wire        rst,
    input  wire [7:0]  in_pixel,
    output wire [3:0]  out_class,
    output wire [149:0] out_logits,
    output wire [31:0] cycles
);
endmodule
";

    #[test]
    fn port_widths_are_read_from_the_top() {
        let widths = port_widths(TOP, "tiny_cnn_top");
        assert_eq!(widths["clk"], 1);
        assert_eq!(widths["in_pixel"], 8);
        assert_eq!(widths["out_class"], 4);
        assert_eq!(widths["out_logits"], 150);
        assert_eq!(widths["cycles"], 32);
    }

    #[test]
    fn the_up5k_board_uses_at_most_39_pins() {
        let pins = assign_pins(&UP5K, 4).unwrap();
        assert_eq!(pins.len(), 18);
        assert!(pins.len() <= 39);
        assert_eq!(pins[0].name, "clk");
        assert_eq!(pins[0].site, "35");
        assert!(assign_pins(&UP5K, 30)
            .unwrap_err()
            .contains("needs 44 of 32 I/O pins"));
    }

    #[test]
    fn templates_render_every_pin() {
        let pins = assign_pins(&ECP5_85K, 4).unwrap();
        let files = render(&ECP5_85K, "tiny_cnn_top", 4, &pins, Some(50.0), "h").unwrap();
        let lpf = &files["board.lpf"];
        assert!(lpf.contains("LOCATE COMP \"in_pixel[7]\" SITE"));
        assert!(lpf.contains("FREQUENCY PORT \"clk\" 50 MHZ;"));
        assert!(files["board.v"].contains("tiny_cnn_top design ("));
        assert!(files["board.v"].contains("output wire [3:0]  out_class"));
        let pins = assign_pins(&UP5K, 4).unwrap();
        let files = render(&UP5K, "t_top", 4, &pins, Some(30.0), "h").unwrap();
        assert_eq!(
            files["board.pcf"].matches("set_io ").count(),
            pins.len(),
            "{}",
            files["board.pcf"]
        );
        assert_eq!(format_mhz(30.0), "30");
        assert_eq!(format_mhz(12.5), "12.5");
    }
}
