//! The quantizers: how a float weight or activation becomes an integer code, for every bit width.
//!
//! Training (forward pass with straight-through estimators) and the integer reference model
//! both call these functions, so the codes they see are the same by construction.
//!
//! - Weights, Q >= 2: symmetric signed codes in [-(2^(Q-1)-1), 2^(Q-1)-1] (the narrow range, a
//!   subset of Q-bit two's complement) times a per-layer step; Q = 1: bipolar {-1, +1}.
//! - Activations, Q >= 2: unsigned codes 0..=2^Q-1 of a ReLU clipped to [0, 1], step 1/(2^Q-1);
//!   Q = 1: bipolar {-1, +1}, the sign of hard-tanh (zero maps to +1).
//! - The input image: 8-bit unsigned pixels, value = pixel / 255, whatever Q is.

use multiversion::multiversion;
use rayon::prelude::*;

/// Largest positive weight code at `bits` (>= 2).
pub fn weight_max_code(bits: u32) -> i32 {
    (1 << (bits - 1)) - 1
}

/// Largest activation code at `bits` (>= 2).
pub fn act_max_code(bits: u32) -> i32 {
    ((1u32 << bits) - 1) as i32
}

/// Clipping point of the weight quantizer in standard deviations of the layer's weights: close to
/// the mean-square-optimal uniform quantizer of a Gaussian with 2^Q - 1 levels. Wider precisions
/// clip at the largest weight instead.
fn clip_in_sigmas(bits: u32) -> Option<f32> {
    match bits {
        2 => Some(1.22),
        3 => Some(1.96),
        4 => Some(2.52),
        5 => Some(2.98),
        6 => Some(3.36),
        7 => Some(3.66),
        8 => Some(3.94),
        _ => None,
    }
}

/// Sum of magnitudes, sum of squares and largest magnitude of some weights.
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    sum_abs: f64,
    sum_sq: f64,
    max_abs: f32,
}

impl Moments {
    fn add(self, other: Moments) -> Moments {
        Moments {
            sum_abs: self.sum_abs + other.sum_abs,
            sum_sq: self.sum_sq + other.sum_sq,
            max_abs: self.max_abs.max(other.max_abs),
        }
    }
}

/// The moments of `weights`: sums over blocks of `BLOCK` weights in `LANES` interleaved f32
/// lanes (short enough to stay exact to about one part in 10^6), the blocks' sums added in f64
/// in order. The lanes compile to vector code; the order is fixed, so every run agrees.
#[multiversion(targets = "simd")]
fn moments(weights: &[f32]) -> Moments {
    const LANES: usize = 16;
    const BLOCK: usize = 16 * LANES;
    let mut total = Moments::default();
    for block in weights.chunks(BLOCK) {
        let (mut sum_abs, mut sum_sq, mut max_abs) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
        for group in block.chunks(LANES) {
            for (((a, q), m), &w) in sum_abs
                .iter_mut()
                .zip(&mut sum_sq)
                .zip(&mut max_abs)
                .zip(group)
            {
                *a += w.abs();
                *q += w * w;
                *m = m.max(w.abs());
            }
        }
        total = total.add(Moments {
            sum_abs: sum_abs.iter().map(|&v| v as f64).sum(),
            sum_sq: sum_sq.iter().map(|&v| v as f64).sum(),
            max_abs: max_abs.iter().fold(0f32, |m, &v| m.max(v)),
        });
    }
    total
}

/// The step (value of one code) of a layer's weights at `bits`: derived from the weights'
/// root-mean-square and largest magnitude, so it follows them as they train. For one bit the
/// "step" is the magnitude of both levels, the mean absolute weight (as in XNOR-Net).
pub fn weight_step(bits: u32, weights: &[f32]) -> f32 {
    let n = weights.len().max(1) as f64;
    // Partial sums over fixed chunks, added in order: the same step on any number of threads.
    let partials: Vec<Moments> = weights.par_chunks(1 << 14).map(moments).collect();
    let Moments {
        sum_abs,
        sum_sq,
        max_abs,
    } = partials.into_iter().fold(Moments::default(), Moments::add);
    let step = if bits == 1 {
        (sum_abs / n) as f32
    } else {
        let rms = (sum_sq / n).sqrt() as f32;
        let clip = match clip_in_sigmas(bits) {
            Some(sigmas) => (sigmas * rms).min(max_abs),
            None => max_abs,
        };
        clip / weight_max_code(bits) as f32
    };
    // An all-zero layer still needs a usable step.
    if step > f32::MIN_POSITIVE {
        step
    } else {
        1.0
    }
}

/// `multi_bit_weight_code(max, step, w) as f32 * step`, the value a weight stands for, computed
/// without leaving f32 so that a loop of it compiles to vector code (the same value for every
/// finite `w`; `tests::weight_values_equal_their_codes_times_the_step` checks it).
#[inline]
pub fn multi_bit_weight_value(max: i32, step: f32, w: f32) -> f32 {
    // `+ 0.0` turns the -0 that rounding small negative values gives into the code 0's +0.
    (w / step).round().clamp(-(max as f32), max as f32) * step + 0.0
}

/// The integer code of one weight.
#[inline]
pub fn weight_code(bits: u32, step: f32, w: f32) -> i32 {
    if bits == 1 {
        if w >= 0.0 {
            1
        } else {
            -1
        }
    } else {
        multi_bit_weight_code(weight_max_code(bits), step, w)
    }
}

/// [`weight_code`] at two or more bits, whose largest code is `max`.
#[inline]
pub fn multi_bit_weight_code(max: i32, step: f32, w: f32) -> i32 {
    // Clamped first into the range `round_small` takes; the codes beyond clamp anyway.
    let bound = max as f32 + 1.0;
    round_small((w / step).clamp(-bound, bound)).clamp(-max, max)
}

/// Whether the straight-through estimator passes the gradient of a weight: inside the range the
/// quantizer represents (BinaryConnect's |w| <= 1 for one bit).
#[inline]
pub fn weight_passes_gradient(bits: u32, step: f32, w: f32) -> bool {
    if bits == 1 {
        w.abs() <= 1.0
    } else {
        w.abs() <= multi_bit_gradient_limit(weight_max_code(bits), step)
    }
}

/// The largest magnitude of a weight whose gradient passes at two or more bits, whose largest
/// code is `max`: half a step beyond it.
#[inline]
pub fn multi_bit_gradient_limit(max: i32, step: f32) -> f32 {
    step * (max as f32 + 0.5)
}

/// The integer code of one activation.
#[inline]
pub fn act_code(bits: u32, x: f32) -> i32 {
    if bits == 1 {
        if x >= 0.0 {
            1
        } else {
            -1
        }
    } else {
        let max = act_max_code(bits);
        round_small(x.clamp(0.0, 1.0) * max as f32)
    }
}

/// `y.round() as i32` for `|y| < 2^23` (ties away from zero; NaN gives 0 as `round` and the
/// cast do), without the library call `round` compiles to: there the fraction `y - trunc(y)`
/// is exact, so comparing it with one half rounds exactly as `round` does.
#[inline]
pub fn round_small(y: f32) -> i32 {
    let whole = y as i32;
    let fraction = y - whole as f32;
    whole + i32::from(fraction >= 0.5) - i32::from(fraction <= -0.5)
}

/// `act_value(bits, act_code(bits, x))` at two or more bits, whose largest code is `max`,
/// computed without leaving f32 so that a loop of it compiles to vector code (the same value
/// for every `x` but NaN; `tests::activation_values_equal_their_codes_values` checks it).
#[inline]
pub fn multi_bit_act_value(max: i32, x: f32) -> f32 {
    // `+ 0.0` turns the -0 that -0 clamps to into the code 0's +0.
    (x.clamp(0.0, 1.0) * max as f32).round() / max as f32 + 0.0
}

/// The value an activation code stands for.
#[inline]
pub fn act_value(bits: u32, code: i32) -> f32 {
    if bits == 1 {
        code as f32
    } else {
        code as f32 / act_max_code(bits) as f32
    }
}

/// Whether the straight-through estimator passes the gradient of an activation: where the
/// clipping function (hard-tanh for one bit, ReLU clipped at 1 otherwise) has slope one.
#[inline]
pub fn act_passes_gradient(bits: u32, x: f32) -> bool {
    if bits == 1 {
        x.abs() <= 1.0
    } else {
        (0.0..=1.0).contains(&x)
    }
}

/// The value of an 8-bit input pixel.
#[inline]
pub fn pixel_value(pixel: u8) -> f32 {
    pixel as f32 / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_without_the_library_call_equals_round() {
        // Every tie k + 0.5, its neighbours one ulp either side, and a sweep over the range
        // the 16-bit activation quantizer reaches.
        let mut values = vec![0.0f32, f32::MIN_POSITIVE, 0.49999997, 0.5, 65535.0];
        for k in 0..70_000 {
            let tie = k as f32 + 0.5;
            values.extend([tie, tie.next_down(), tie.next_up()]);
        }
        values.extend((0..1_000_000).map(|i| i as f32 * 0.065_535_7));
        for y in values {
            assert_eq!(round_small(y), y.round() as i32, "{y:e}");
            assert_eq!(round_small(-y), (-y).round() as i32, "{y:e}");
        }
        assert_eq!(round_small(f32::NAN), 0);
    }

    #[test]
    fn activation_values_equal_their_codes_values() {
        let mut inputs: Vec<f32> = (-2000..=70000).map(|i| i as f32 / 65535.0).collect();
        inputs.extend(
            inputs
                .clone()
                .iter()
                .flat_map(|x| [x.next_up(), x.next_down()]),
        );
        inputs.extend([-0.0, 1e30, -1e30, f32::MAX, f32::MIN, f32::INFINITY]);
        for bits in 2..=16 {
            let max = act_max_code(bits);
            for &x in &inputs {
                assert_eq!(
                    multi_bit_act_value(max, x).to_bits(),
                    act_value(bits, act_code(bits, x)).to_bits(),
                    "bits {bits} x {x:e}"
                );
            }
        }
    }

    #[test]
    fn weight_values_equal_their_codes_times_the_step() {
        // Ties of the rounding, their neighbours, values beyond the range and large ones.
        let mut weights: Vec<f32> = (-3000..=3000).map(|i| i as f32 * 0.05).collect();
        weights.extend(
            weights
                .clone()
                .iter()
                .flat_map(|w| [w.next_up(), w.next_down()]),
        );
        weights.extend([
            0.0,
            -0.0,
            1e30,
            -1e30,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
        ]);
        for bits in 2..=16 {
            let max = weight_max_code(bits);
            for step in [0.1f32, 0.0173, 3.0, 1e-6] {
                for &w in &weights {
                    assert_eq!(
                        multi_bit_weight_value(max, step, w).to_bits(),
                        (multi_bit_weight_code(max, step, w) as f32 * step).to_bits(),
                        "bits {bits} step {step} w {w:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn weight_codes_cover_the_narrow_range_at_every_precision() {
        let weights: Vec<f32> = (-1000..=1000).map(|i| i as f32 / 100.0).collect();
        for bits in 2..=16 {
            let step = weight_step(bits, &weights);
            let codes: Vec<i32> = weights
                .iter()
                .map(|&w| weight_code(bits, step, w))
                .collect();
            let max = weight_max_code(bits);
            assert_eq!(*codes.iter().max().unwrap(), max, "bits {bits}");
            assert_eq!(*codes.iter().min().unwrap(), -max, "bits {bits}");
            assert!(codes.windows(2).all(|p| p[0] <= p[1]), "monotone at {bits}");
            // Every code is within one half step of the value it stands for, inside the range.
            for (&w, &c) in weights.iter().zip(&codes) {
                if w.abs() <= step * max as f32 {
                    assert!(
                        (w - c as f32 * step).abs() <= step * 0.5 + 1e-5,
                        "bits {bits} w {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn binary_weights_and_activations_are_signs() {
        assert_eq!(weight_code(1, 0.3, 0.0), 1);
        assert_eq!(weight_code(1, 0.3, -1e-9), -1);
        assert_eq!(act_code(1, 0.0), 1);
        assert_eq!(act_code(1, -0.2), -1);
        assert_eq!(act_value(1, -1), -1.0);
        assert!((weight_step(1, &[-0.5, 0.25, 0.75]) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn activation_levels_rounding_and_clipping() {
        for bits in 2..=16u32 {
            let max = act_max_code(bits);
            assert_eq!(max, (1 << bits) - 1);
            assert_eq!(act_code(bits, -3.0), 0);
            assert_eq!(act_code(bits, 7.0), max);
            assert_eq!(act_code(bits, 1.0), max);
            let step = 1.0 / max as f32;
            assert_eq!(act_code(bits, 2.0 * step), 2);
            // Ties round up, just above a tie rounds up, just below rounds down.
            assert_eq!(act_code(bits, 1.5 * step), 2);
            assert_eq!(act_code(bits, 1.45 * step), 1);
            assert_eq!(act_value(bits, act_code(bits, 1.0)), 1.0);
        }
        assert_eq!(act_code(2, 0.5), 2); // 0.5 * 3 = 1.5 rounds up
    }

    #[test]
    fn straight_through_masks() {
        assert!(act_passes_gradient(1, 1.0) && act_passes_gradient(1, -1.0));
        assert!(!act_passes_gradient(1, 1.01) && !act_passes_gradient(1, -1.01));
        assert!(act_passes_gradient(4, 0.0) && act_passes_gradient(4, 1.0));
        assert!(!act_passes_gradient(4, -0.01) && !act_passes_gradient(4, 1.01));
        assert!(weight_passes_gradient(1, 0.1, -1.0) && !weight_passes_gradient(1, 0.1, 1.5));
        let step = 0.1;
        assert!(weight_passes_gradient(4, step, 0.74));
        assert!(!weight_passes_gradient(4, step, 0.76));
    }

    #[test]
    fn zero_weights_get_a_usable_step() {
        assert_eq!(weight_step(4, &[0.0; 8]), 1.0);
        assert_eq!(weight_code(4, 1.0, 0.0), 0);
    }
}
