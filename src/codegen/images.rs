//! Memory images for `$readmemh`: weights, thresholds and requantization parameters, one word
//! a line in hex, laid out as `qnnc_core.v` reads them (the descriptors: `descriptor.rs`).

use super::Hardware;
use crate::schedule::{Post, Schedule};

/// A word of any width, filled field by field (two's complement for negative values).
pub struct Word {
    bits: Vec<bool>,
}

impl Word {
    pub fn new(width: usize) -> Self {
        Word {
            bits: vec![false; width],
        }
    }

    pub fn set(&mut self, offset: usize, width: usize, value: i64) {
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

pub fn image(header: &str, words: Vec<Word>, width: usize) -> String {
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

/// Threshold memories, one a level of the binary search (`qnnc_threshold.v`): level l has, for
/// each threshold layer, group and prefix p < 2^l, per PE the threshold that splits the range
/// p leaves, `TW` bits; level 0's slot has the descending flag above it. Each channel's
/// thresholds are sorted in the order the accumulator reaches them (ascending, or descending
/// on descending channels), which leaves their count, the code, unchanged, and padded with
/// values no accumulator reaches.
pub fn thresholds(schedule: &Schedule, hw: &Hardware, header: &str) -> Vec<String> {
    let (levels, tw, pe) = (
        hw.threshold_levels,
        hw.threshold_bits as usize,
        schedule.config.pe,
    );
    let never_up = (1i64 << (tw - 1)) - 1;
    let never_down = -(1i64 << (tw - 1));
    let mut sorted = Vec::new();
    for layer in &schedule.layers {
        let Post::Threshold { table, .. } = &layer.post else {
            continue;
        };
        for g in 0..layer.groups {
            let group: Vec<Option<(Vec<i64>, bool)>> = (0..pe)
                .map(|i| {
                    let c = g * pe + i;
                    let row = table.thresholds.get(c)?;
                    let descending = table.descending[c];
                    let mut row = row.clone();
                    row.sort_unstable();
                    if descending {
                        row.reverse();
                    }
                    let padding = if descending { never_down } else { never_up };
                    row.resize(hw.thresholds() as usize, padding);
                    Some((row, descending))
                })
                .collect();
            sorted.push(group);
        }
    }
    (0..levels)
        .map(|level| {
            let slot = if level == 0 { tw + 1 } else { tw };
            let span = 1usize << (levels - level);
            let mut words = Vec::new();
            for group in &sorted {
                for prefix in 0..1usize << level {
                    let mut word = Word::new(pe * slot);
                    for (i, channel) in group.iter().enumerate() {
                        let Some((row, descending)) = channel else {
                            continue;
                        };
                        word.set(i * slot, tw, row[prefix * span + span / 2 - 1]);
                        if level == 0 {
                            word.set(i * slot + tw, 1, *descending as i64);
                        }
                    }
                    words.push(word);
                }
            }
            image(header, words, pe * slot)
        })
        .collect()
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
