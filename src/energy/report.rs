//! The energy report of one inference: every term per layer and the totals, rendered as an
//! aligned table, JSON or CSV. Every rendering is deterministic: fixed number formats, no
//! timestamps, no paths.

use serde::Serialize;

/// Significant digits of the energies in JSON and CSV: all a reader can use (a sum of the
/// layers equals the total to 1e-12), yet stable across platforms whose `powf` differ in the
/// last bit of a double (16 to 17 digits).
const JSON_SIGNIFICANT_DIGITS: usize = 12;

/// The energy of one inference on one profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergyReport {
    /// Name of the hardware profile.
    pub profile: String,
    /// Unit of every energy.
    pub units: String,
    /// Energy of one inference: the sum of every layer's E_layer.
    #[serde(serialize_with = "serialize_rounded")]
    pub total: f64,
    pub totals: EnergyTotals,
    pub layers: Vec<LayerEnergy>,
}

/// Sums over the layers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergyTotals {
    #[serde(serialize_with = "serialize_rounded")]
    pub e_c: f64,
    #[serde(serialize_with = "serialize_rounded")]
    pub e_w: f64,
    #[serde(serialize_with = "serialize_rounded")]
    pub e_a: f64,
    pub macs: u64,
    pub weights: u64,
}

/// The energy of one MAC layer (with the layers fused into it) and the work it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerEnergy {
    pub name: String,
    /// "conv2d" or "dense".
    pub op: String,
    /// N_c: multiply-accumulates.
    pub macs: u64,
    /// N_s: weights.
    pub weights: u64,
    /// A_s: outputs computed (before a max-pool).
    pub outputs_computed: u64,
    /// A_out: outputs stored (after a max-pool).
    pub outputs_stored: u64,
    /// Qw: bits of a weight.
    pub wbits: u32,
    /// Qa: bits of a stored output activation (Qa_out).
    pub abits: u32,
    /// Qa_in: bits of an input activation.
    pub abits_in: u32,
    /// E_MAC: energy of one multiply-accumulate.
    #[serde(serialize_with = "serialize_rounded")]
    pub e_mac: f64,
    /// E_C: computation.
    #[serde(serialize_with = "serialize_rounded")]
    pub e_c: f64,
    /// E_W: weight accesses.
    #[serde(serialize_with = "serialize_rounded")]
    pub e_w: f64,
    /// E_A: activation accesses.
    #[serde(serialize_with = "serialize_rounded")]
    pub e_a: f64,
    /// E_layer = E_C + E_W + E_A.
    #[serde(serialize_with = "serialize_rounded")]
    pub e_layer: f64,
    /// Fraction of the total, 0..=1.
    #[serde(serialize_with = "serialize_rounded")]
    pub share: f64,
}

/// One line of a rendering: a layer, or the totals with the fields that only a layer has left
/// blank.
struct Line {
    name: String,
    op: String,
    /// N_c, N_s, A_s, A_out, Qw, Qa_in, Qa.
    counts: [String; 7],
    e_mac: Option<f64>,
    /// E_C, E_W, E_A, E_layer.
    energies: [f64; 4],
    share: f64,
}

impl EnergyReport {
    /// An aligned table: a header line naming the profile and units, one row per layer, and a
    /// totals row.
    pub fn to_table(&self) -> String {
        // The names of the JSON and CSV fields; the share in percent, as its title says.
        let titles = [
            "layer",
            "op",
            "macs",
            "weights",
            "outputs_computed",
            "outputs_stored",
            "wbits",
            "abits_in",
            "abits",
            "e_c",
            "e_w",
            "e_a",
            "e_layer",
            "share_%",
        ];
        let mut rows = vec![titles.map(String::from).to_vec()];
        for line in self.lines() {
            let mut row = vec![line.name, line.op];
            row.extend(line.counts);
            row.extend(line.energies.map(|e| format!("{e:.3e}")));
            row.push(format!("{:.1}", 100.0 * line.share));
            rows.push(row);
        }
        let mut text = format!(
            "energy of one inference on profile {}, in units of {}\n",
            self.profile, self.units
        );
        // Names and ops read left to right; numbers line up on their last digit.
        let text_columns = 2;
        text.push_str(&aligned(&rows, text_columns, rows.len() - 1));
        text
    }

    /// Pretty JSON, the fields in the order of the report; energies and shares rounded to
    /// [`JSON_SIGNIFICANT_DIGITS`].
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("report serialises");
        text.push('\n');
        text
    }

    /// CSV: a header row, one row per layer, and a total row. Layer names are identifiers
    /// (checked by the spec), so no field needs quoting.
    pub fn to_csv(&self) -> String {
        let mut text = String::from(
            "layer,op,macs,weights,outputs_computed,outputs_stored,wbits,abits_in,abits,\
             e_mac,e_c,e_w,e_a,e_layer,share\n",
        );
        for line in self.lines() {
            let mut fields = vec![line.name, line.op];
            fields.extend(line.counts);
            // The same numbers, as the same text, as in the JSON.
            let number = |value: f64| round_significant(value).to_string();
            fields.push(line.e_mac.map(number).unwrap_or_default());
            fields.extend(line.energies.map(number));
            fields.push(number(line.share));
            text.push_str(&fields.join(","));
            text.push('\n');
        }
        text
    }

    /// The layers, then the totals.
    fn lines(&self) -> Vec<Line> {
        let mut lines: Vec<Line> = self
            .layers
            .iter()
            .map(|layer| Line {
                name: layer.name.clone(),
                op: layer.op.clone(),
                counts: [
                    layer.macs,
                    layer.weights,
                    layer.outputs_computed,
                    layer.outputs_stored,
                    layer.wbits.into(),
                    layer.abits_in.into(),
                    layer.abits.into(),
                ]
                .map(|count| count.to_string()),
                e_mac: Some(layer.e_mac),
                energies: [layer.e_c, layer.e_w, layer.e_a, layer.e_layer],
                share: layer.share,
            })
            .collect();
        let totals = &self.totals;
        let mut counts: [String; 7] = Default::default();
        counts[0] = totals.macs.to_string();
        counts[1] = totals.weights.to_string();
        lines.push(Line {
            name: "total".into(),
            op: String::new(),
            counts,
            e_mac: None,
            energies: [totals.e_c, totals.e_w, totals.e_a, self.total],
            share: 1.0,
        });
        lines
    }
}

/// Rows as columns padded to a common width: the first `text_columns` left-aligned, the rest
/// right-aligned, with a rule drawn above row `rule_before`.
fn aligned(rows: &[Vec<String>], text_columns: usize, rule_before: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line_width = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
    let mut text = String::new();
    for (r, row) in rows.iter().enumerate() {
        if r == rule_before {
            text.push_str(&"-".repeat(line_width));
            text.push('\n');
        }
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &width))| {
                if c < text_columns {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// Serializes an energy or share rounded to [`JSON_SIGNIFICANT_DIGITS`].
fn serialize_rounded<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(round_significant(*value))
}

fn round_significant(value: f64) -> f64 {
    let precision = JSON_SIGNIFICANT_DIGITS - 1;
    format!("{value:.precision$e}").parse().unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_twelve_significant_digits() {
        assert_eq!(round_significant(1234567.891234567), 1234567.89123);
        assert_eq!(round_significant(0.000123456789012345), 0.000123456789012);
        assert_eq!(round_significant(0.0), 0.0);
    }

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let rows = vec![
            vec!["a".to_string(), "10".to_string()],
            vec!["long".to_string(), "5".to_string()],
        ];
        assert_eq!(aligned(&rows, 1, 1), "a     10\n--------\nlong   5\n");
    }
}
