//! Sums on integer codes, computed directly (never through weights, so that the hardware's
//! mask-weight convolutions are checked against an independent computation): average-pool
//! window sums and the shifted element sums of adds.

use crate::spec::Shape;

/// The sum of each channel over `size` x `size` windows (no padding).
pub struct WindowSum {
    pub input: Shape,
    pub output: Shape,
    pub size: usize,
    pub stride: usize,
}

impl WindowSum {
    pub fn run(&self, x: &[i64], images: usize) -> Vec<i64> {
        let windows = super::mac::Pool {
            input: self.input,
            output: self.output,
            size: self.size,
            stride: self.stride,
        };
        windows.fold(x, images, 0, |sum, v| sum + v)
    }
}

/// `(a << shifts[0]) + (b << shifts[1])`, element by element.
pub fn add_shifted(a: &[i64], b: &[i64], shifts: [u32; 2]) -> Vec<i64> {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| (a << shifts[0]) + (b << shifts[1]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sums_by_hand() {
        // One image 3x3x2: channel 0 holds 1..=9, channel 1 holds 10 * (1..=9).
        let x: Vec<i64> = (1..=9).flat_map(|v| [v, 10 * v]).collect();
        let pool = |size, stride, out| WindowSum {
            input: Shape {
                height: 3,
                width: 3,
                channels: 2,
            },
            output: Shape {
                height: out,
                width: out,
                channels: 2,
            },
            size,
            stride,
        };
        // 2x2 windows, stride 1: [1 2 4 5] = 12, [2 3 5 6] = 16, [4 5 7 8] = 24, [5 6 8 9] = 28.
        assert_eq!(
            pool(2, 1, 2).run(&x, 1),
            vec![12, 120, 16, 160, 24, 240, 28, 280]
        );
        // 2x2, stride 2 (floor mode): the top-left window only.
        assert_eq!(pool(2, 2, 1).run(&x, 1), vec![12, 120]);
        // Global: 45 and 450.
        assert_eq!(pool(3, 3, 1).run(&x, 1), vec![45, 450]);
        // Two images, the second the negation of the first (bipolar-like signed codes).
        let two: Vec<i64> = x.iter().copied().chain(x.iter().map(|v| -v)).collect();
        assert_eq!(pool(3, 3, 1).run(&two, 2), vec![45, 450, -45, -450]);
    }

    #[test]
    fn shifted_sums_by_hand() {
        assert_eq!(add_shifted(&[0, 1, 3], &[2, 2, 3], [0, 0]), vec![2, 3, 6]);
        assert_eq!(add_shifted(&[-1, 1, 1], &[1, 1, -1], [0, 0]), vec![0, 2, 0]);
        assert_eq!(add_shifted(&[1, 2, 3], &[1, 1, 1], [2, 0]), vec![5, 9, 13]);
        assert_eq!(add_shifted(&[1, 2, 3], &[1, 1, 1], [0, 1]), vec![3, 4, 5]);
    }
}
