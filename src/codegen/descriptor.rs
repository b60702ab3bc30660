//! The layer descriptor: what the controller in `qnnc_core.v` reads for each layer. Its layout
//! is defined here once: every field's place and width (sized from the network, not fixed),
//! the memory image of the descriptor table, and the Verilog include `qnnc_layout.vh` that
//! names the fields for the RTL, so that the two cannot disagree.

use super::images::Word;
use super::Hardware;
use crate::schedule::{LayerKind, LayerSchedule, Post, Schedule};

/// One field: its name in the include (`QNNC_<NAME>`), its bits, and its value per layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// Where the field starts in the descriptor word.
    pub lsb: usize,
    pub width: u32,
    /// A flag is one bit, addressed as a bit index rather than a range.
    pub flag: bool,
    pub values: Vec<i64>,
}

/// The fields of every layer's descriptor, and the working width of element addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub fields: Vec<Field>,
    /// Signed width of the loader's element arithmetic (`QNNC_XW`).
    pub element_bits: u32,
    pub bits: usize,
}

/// Bits of an unsigned value (at least 1).
fn unsigned_bits(max: i64) -> u32 {
    (64 - (max.max(1) as u64).leading_zeros()).max(1)
}

/// Bits of a two's-complement value range (at least 2).
fn signed_bits(min: i64, max: i64) -> u32 {
    let magnitude = max.max(-(min + 1)).max(0) as u64;
    (65 - magnitude.leading_zeros()).max(2)
}

/// The loader's element geometry of a layer: K*C, W*C, H*W*C, where the first window starts,
/// and the strides between windows (next pixel in a pooling window, next row in it, next
/// pooling window, next row of pooling windows), all in elements of the source buffer.
struct Geometry {
    kc: i64,
    wc: i64,
    hwc: i64,
    ex0: i64,
    ey0: i64,
    step_rx: i64,
    step_ry: i64,
    step_px: i64,
    step_py: i64,
    /// Between two rows of the window.
    step_ky: i64,
}

impl Geometry {
    fn of(layer: &LayerSchedule) -> Geometry {
        let c = layer.input.channels as i64;
        let wc = layer.input.width as i64 * c;
        let (pad, stride, pool) = (
            layer.padding as i64,
            layer.stride as i64,
            layer.pool_size() as i64,
        );
        Geometry {
            kc: layer.kernel as i64 * c,
            wc,
            hwc: layer.input.height as i64 * wc,
            ex0: -pad * c,
            ey0: -pad * wc,
            step_rx: stride * c,
            step_ry: stride * wc,
            step_px: pool * stride * c,
            step_py: pool * stride * wc,
            step_ky: layer.window_row_step() as i64,
        }
    }

    /// A bound on every element address the loader's counters reach.
    fn reach(layer: &LayerSchedule) -> i64 {
        let g = Geometry::of(layer);
        let pool = layer.pool_size() as i64;
        let margin = 2 * (layer.padding as i64 + pool * layer.stride as i64 + layer.kernel as i64);
        (layer.input.height as i64 + margin) * g.wc
            + (layer.input.width as i64 + margin) * g.kc.max(1)
    }
}

/// The clamp of a requantizing layer (logits keep the whole logit range), else none.
pub fn clamp_range(layer: &LayerSchedule, logit_bits: u32) -> (i64, i64) {
    match &layer.post {
        Post::Requantize { requantization } => requantization
            .clamp
            .unwrap_or((-(1i64 << (logit_bits - 1)), (1i64 << (logit_bits - 1)) - 1)),
        _ => (0, 0),
    }
}

impl Layout {
    pub fn new(schedule: &Schedule, hw: &Hardware) -> Layout {
        let layers = &schedule.layers;
        let per_layer =
            |f: &dyn Fn(&LayerSchedule) -> i64| layers.iter().map(f).collect::<Vec<_>>();
        let mut fields: Vec<(&'static str, Option<u32>, Vec<i64>)> = Vec::new();
        let mut flag = |name, f: &dyn Fn(&LayerSchedule) -> bool| {
            fields.push((name, Some(1), per_layer(&|l| f(l) as i64)));
        };
        flag("IN_BIPOLAR", &|l| l.in_bipolar);
        flag("W_BIPOLAR", &|l| l.weight_bipolar);
        flag("REQUANT", &|l| matches!(l.post, Post::Requantize { .. }));
        flag("RAW", &|l| matches!(l.post, Post::Raw));
        flag("LAST", &|l| l.last);
        flag("DIRECT", &|l| l.direct);
        flag("MASK", &|l| l.kind.mask());
        flag("ADD", &|l| l.kind == LayerKind::Add);
        // The flags come first; each is one bit, addressed as a bit index.
        let flag_count = fields.len();
        let (pe, simd) = (schedule.config.pe as i64, schedule.config.simd as i64);
        let counts: [(&'static str, Option<u32>, Vec<i64>); 9] = [
            (
                "T_LAST",
                // Wide enough to address a window bank too.
                Some(
                    unsigned_bits(
                        layers
                            .iter()
                            .map(|l| l.chunks as i64 - 1)
                            .max()
                            .unwrap_or(0),
                    )
                    .max(hw.window_address_bits),
                ),
                per_layer(&|l| l.chunks as i64 - 1),
            ),
            ("G_LAST", None, per_layer(&|l| l.groups as i64 - 1)),
            (
                "G_TAIL",
                Some(unsigned_bits(pe)),
                per_layer(&|l| l.output.channels as i64 - (l.groups as i64 - 1) * pe),
            ),
            (
                "LANE_TAIL",
                Some(unsigned_bits(simd)),
                per_layer(&|l| l.fan_in as i64 - (l.chunks as i64 - 1) * simd),
            ),
            (
                "W_BASE",
                Some(hw.weight_address_bits),
                per_layer(&|l| l.weight_base as i64),
            ),
            (
                "P_BASE",
                Some(hw.threshold_address_bits.max(hw.requant_address_bits)),
                per_layer(&|l| l.param_base as i64),
            ),
            ("P_LAST", None, per_layer(&|l| l.pool_size() as i64 - 1)),
            ("PW_LAST", None, per_layer(&|l| l.stored().width as i64 - 1)),
            (
                "PH_LAST",
                None,
                per_layer(&|l| l.stored().height as i64 - 1),
            ),
        ];
        fields.extend(counts);
        // Rows of the window: the kernel's, or an addition's two sources.
        fields.push(("K_LAST", None, per_layer(&|l| l.window_rows() as i64 - 1)));
        let element_bits = {
            let reach = layers.iter().map(Geometry::reach).max().unwrap_or(1);
            let window = (hw.window_rows * hw.simd) as i64;
            let rows = hw.pixel_rows.max(hw.act_rows) as i64;
            signed_bits(-reach, reach.max(rows * simd).max(window)) + 1
        };
        type Of = fn(&Geometry) -> i64;
        let geometry: [(&'static str, Of); 10] = [
            ("KC", |g| g.kc),
            ("WC", |g| g.wc),
            ("HWC", |g| g.hwc),
            ("EX0", |g| g.ex0),
            ("EY0", |g| g.ey0),
            ("STEP_RX", |g| g.step_rx),
            ("STEP_RY", |g| g.step_ry),
            ("STEP_PX", |g| g.step_px),
            ("STEP_PY", |g| g.step_py),
            ("STEP_KY", |g| g.step_ky),
        ];
        for (name, value) in geometry {
            fields.push((
                name,
                Some(element_bits),
                per_layer(&|l| value(&Geometry::of(l))),
            ));
        }
        let shifts = per_layer(&|l| match &l.post {
            Post::Requantize { requantization } => requantization.shift as i64,
            _ => 0,
        });
        fields.push(("SHIFT", None, shifts));
        let clamps: Vec<(i64, i64)> = layers
            .iter()
            .map(|l| clamp_range(l, hw.logit_bits))
            .collect();
        let clamp_bits = clamps
            .iter()
            .map(|&(lo, hi)| signed_bits(lo.min(hi), hi.max(lo)))
            .max()
            .unwrap_or(2);
        fields.push(("LO", Some(clamp_bits), clamps.iter().map(|c| c.0).collect()));
        fields.push(("HI", Some(clamp_bits), clamps.iter().map(|c| c.1).collect()));
        // Regions of the activation memory (the address is {region, row}).
        let region = Some(hw.act_region_bits);
        fields.push(("SRC_REGION", region, per_layer(&|l| l.source_region as i64)));
        fields.push(("DST_REGION", region, per_layer(&|l| l.dest_region as i64)));
        fields.push(("SKIP_REGION", region, per_layer(&|l| l.skip_region as i64)));

        let mut lsb = 0;
        let fields = fields
            .into_iter()
            .enumerate()
            .map(|(index, (name, width, values))| {
                let width = width
                    .unwrap_or_else(|| unsigned_bits(values.iter().copied().max().unwrap_or(0)));
                let field = Field {
                    name,
                    lsb,
                    width,
                    flag: index < flag_count,
                    values,
                };
                lsb += width as usize;
                field
            })
            .collect();
        Layout {
            fields,
            element_bits,
            bits: lsb,
        }
    }

    /// The descriptor table as a `$readmemh` image, one layer a line.
    pub fn image(&self, header: &str, layers: usize) -> String {
        let words = (0..layers)
            .map(|l| {
                let mut word = Word::new(self.bits);
                for field in &self.fields {
                    word.set(field.lsb, field.width as usize, field.values[l]);
                }
                word
            })
            .collect();
        super::images::image(header, words, self.bits)
    }

    /// The Verilog include naming every field: `QNNC_<NAME>` is the field's bit (flags) or
    /// part-select (`lsb +: width`), `QNNC_<NAME>_W` its width.
    pub fn include(&self, header: &str) -> String {
        let mut text = format!(
            "{header}\n// The layer descriptor's layout (see src/codegen/descriptor.rs).\n\
             `ifndef QNNC_LAYOUT_VH\n`define QNNC_LAYOUT_VH\n\
             `define QNNC_DESC_BITS {}\n`define QNNC_XW {}\n",
            self.bits, self.element_bits
        );
        for f in &self.fields {
            if f.flag {
                text += &format!("`define QNNC_{} {}\n", f.name, f.lsb);
            } else {
                text += &format!("`define QNNC_{} {} +: {}\n", f.name, f.lsb, f.width);
                text += &format!("`define QNNC_{}_W {}\n", f.name, f.width);
            }
        }
        text += "`endif\n";
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_cover_their_values() {
        assert_eq!(unsigned_bits(0), 1);
        assert_eq!(unsigned_bits(1), 1);
        assert_eq!(unsigned_bits(2), 2);
        assert_eq!(unsigned_bits(255), 8);
        assert_eq!(signed_bits(-1, 0), 2);
        assert_eq!(signed_bits(-128, 127), 8);
        assert_eq!(signed_bits(-129, 0), 9);
        assert_eq!(signed_bits(0, 128), 9);
    }
}
