//! Memory images for `$readmemh`: weights, thresholds, requantization parameters and layer
//! descriptors, one word a line in hex, laid out as `qnnc_core.v` reads them.

use super::Hardware;
use crate::schedule::{LayerSchedule, Post, Schedule};

/// A word of any width, filled field by field (two's complement for negative values).
struct Word {
    bits: Vec<bool>,
}

impl Word {
    fn new(width: usize) -> Self {
        Word {
            bits: vec![false; width],
        }
    }

    fn set(&mut self, offset: usize, width: usize, value: i64) {
        for b in 0..width {
            self.bits[offset + b] = if b < 64 {
                (value >> b) & 1 == 1
            } else {
                value < 0
            };
        }
    }

    fn hex(&self) -> String {
        let digits = self.bits.len().div_ceil(4);
        (0..digits)
            .rev()
            .map(|d| {
                let nibble = (0..4)
                    .filter(|b| self.bits.get(d * 4 + b).copied().unwrap_or(false))
                    .fold(0u32, |n, b| n | 1 << b);
                char::from_digit(nibble, 16).expect("a nibble")
            })
            .collect()
    }
}

fn image(header: &str, words: Vec<Word>, width: usize) -> String {
    let mut text = String::from(header);
    if words.is_empty() {
        // An unused memory still needs one word to be declared.
        text += &Word::new(width).hex();
        text.push('\n');
    }
    for word in words {
        text += &word.hex();
        text.push('\n');
    }
    text
}

/// Weight words: for each layer, group g and chunk t, PE x SIMD codes; PE i lane j at bit
/// `(i * SIMD + j) * WBITS`. Bipolar weights are one bit (1 for +1).
pub fn weights(schedule: &Schedule, hw: &Hardware, header: &str) -> String {
    let (pe, simd) = (schedule.config.pe, schedule.config.simd);
    let width = pe * simd * hw.wbits as usize;
    let mut words = Vec::new();
    for layer in &schedule.layers {
        let w = &layer.weights;
        for g in 0..layer.groups {
            for t in 0..layer.chunks {
                let mut word = Word::new(width);
                for i in 0..pe {
                    for j in 0..simd {
                        let (row, column) = (t * simd + j, g * pe + i);
                        if row >= w.fan_in || column >= w.outputs {
                            continue;
                        }
                        let code = w.codes[row * w.outputs + column] as i64;
                        let value = if layer.weight_bipolar {
                            (code > 0) as i64
                        } else {
                            code
                        };
                        word.set((i * simd + j) * hw.wbits as usize, hw.wbits as usize, value);
                    }
                }
                words.push(word);
            }
        }
    }
    image(header, words, width)
}

/// Threshold words: for each threshold layer and group, per PE `NT` thresholds of `TW` bits
/// and the descending flag. Missing thresholds are padded with values no accumulator reaches.
pub fn thresholds(schedule: &Schedule, hw: &Hardware, header: &str) -> String {
    let (nt, tw) = (hw.thresholds as usize, hw.threshold_bits as usize);
    let slot = nt * tw + 1;
    let width = schedule.config.pe * slot;
    let never_up = (1i64 << (tw - 1)) - 1;
    let never_down = -(1i64 << (tw - 1));
    let mut words = Vec::new();
    for layer in &schedule.layers {
        let Post::Threshold { table, .. } = &layer.post else {
            continue;
        };
        for g in 0..layer.groups {
            let mut word = Word::new(width);
            for i in 0..schedule.config.pe {
                let Some(row) = table.thresholds.get(g * schedule.config.pe + i) else {
                    continue;
                };
                let descending = table.descending[g * schedule.config.pe + i];
                for k in 0..nt {
                    let value = row.get(k).copied().unwrap_or(if descending {
                        never_down
                    } else {
                        never_up
                    });
                    word.set(i * slot + k * tw, tw, value);
                }
                word.set(i * slot + nt * tw, 1, descending as i64);
            }
            words.push(word);
        }
    }
    image(header, words, width)
}

/// Requantization words: for each requantizing layer and group, per PE the multiplier (`MW`
/// bits) and the offset (`OW` bits).
pub fn requantization(schedule: &Schedule, hw: &Hardware, header: &str) -> String {
    let (mw, ow) = (hw.multiplier_bits as usize, hw.offset_bits as usize);
    let width = schedule.config.pe * (mw + ow);
    let mut words = Vec::new();
    for layer in &schedule.layers {
        let Post::Requantize { requantization: r } = &layer.post else {
            continue;
        };
        for g in 0..layer.groups {
            let mut word = Word::new(width);
            for i in 0..schedule.config.pe {
                let c = g * schedule.config.pe + i;
                if c < r.multiplier.len() {
                    word.set(i * (mw + ow), mw, r.multiplier[c]);
                    word.set(i * (mw + ow) + mw, ow, r.offset[c]);
                }
            }
            words.push(word);
        }
    }
    image(header, words, width)
}

/// The descriptor fields of a layer, in the order `qnnc_core.v` names them.
pub fn descriptor_fields(layer: &LayerSchedule, lo_hi: (i64, i64)) -> [i64; DESCRIPTOR_FIELDS] {
    let (pool, pooled) = layer
        .pool
        .map_or((1, layer.output), |(s, shape)| (s, shape));
    let (requant, raw, shift) = match &layer.post {
        Post::Requantize { requantization } => (true, false, requantization.shift),
        Post::Raw => (false, true, 0),
        Post::Threshold { .. } => (false, false, 0),
    };
    let out_bipolar = matches!(layer.post, Post::Threshold { bipolar: true, .. });
    let flags = layer.in_bipolar as i64
        | (layer.weight_bipolar as i64) << 1
        | (requant as i64) << 2
        | (raw as i64) << 3
        | (out_bipolar as i64) << 4
        | (layer.pool.is_some() as i64) << 5
        | (layer.last as i64) << 6;
    [
        layer.input.height as i64,
        layer.input.width as i64,
        layer.input.channels as i64,
        layer.output.height as i64,
        layer.output.width as i64,
        layer.output.channels as i64,
        layer.kernel as i64,
        layer.stride as i64,
        layer.padding as i64,
        layer.fan_in as i64,
        layer.chunks as i64,
        layer.groups as i64,
        layer.weight_base as i64,
        layer.param_base as i64,
        flags,
        pool as i64,
        pooled.height as i64,
        pooled.width as i64,
        shift as i64,
        lo_hi.0,
        lo_hi.1,
    ]
}

pub const DESCRIPTOR_FIELDS: usize = 21;

/// Layer descriptors: 32-bit fields, the first at the least significant end.
pub fn descriptors(schedule: &Schedule, hw: &Hardware, header: &str) -> String {
    let words = schedule
        .layers
        .iter()
        .map(|layer| {
            let lo_hi = match &layer.post {
                Post::Requantize { requantization } => requantization.clamp.unwrap_or((
                    -(1i64 << (hw.logit_bits - 1)),
                    (1i64 << (hw.logit_bits - 1)) - 1,
                )),
                _ => (0, 0),
            };
            let mut word = Word::new(DESCRIPTOR_FIELDS * 32);
            for (f, value) in descriptor_fields(layer, lo_hi).into_iter().enumerate() {
                word.set(f * 32, 32, value);
            }
            word
        })
        .collect();
    image(header, words, DESCRIPTOR_FIELDS * 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_hex_msb_first_with_twos_complement_fields() {
        let mut w = Word::new(12);
        w.set(0, 4, -1);
        w.set(4, 4, 2);
        w.set(8, 4, 0xa);
        assert_eq!(w.hex(), "a2f");
        let mut wide = Word::new(70);
        wide.set(0, 70, -2);
        assert_eq!(wide.hex(), "3ffffffffffffffffe");
    }
}
