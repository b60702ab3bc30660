//! Batch normalisation over the channel (last) axis of NHWC tensors.

use multiversion::multiversion;
use ndarray::Array4;
use rayon::prelude::*;

use super::param::Param;

/// Rows of a `[rows, channels]` buffer that one task reduces; fixed, so that sums are added in
/// the same order on any number of threads (training is bit-reproducible for a seed).
const ROWS_PER_TASK: usize = 512;

#[derive(Debug, Clone)]
pub struct BatchNorm {
    pub gamma: Param,
    pub beta: Param,
    pub running_mean: Param,
    pub running_var: Param,
    pub epsilon: f32,
    pub momentum: f32,
    /// Normalised input of the last training batch, and 1/sqrt(var + eps) per channel.
    x_hat: Vec<f32>,
    inv_std: Vec<f32>,
}

impl BatchNorm {
    pub fn new(channels: usize) -> Self {
        BatchNorm {
            gamma: Param::trainable("gamma", vec![channels], vec![1.0; channels]),
            beta: Param::trainable("beta", vec![channels], vec![0.0; channels]),
            running_mean: Param::state("running_mean", vec![channels], vec![0.0; channels]),
            running_var: Param::state("running_var", vec![channels], vec![1.0; channels]),
            epsilon: 1e-5,
            momentum: 0.1,
            x_hat: Vec::new(),
            inv_std: Vec::new(),
        }
    }

    fn channels(&self) -> usize {
        self.gamma.value.len()
    }

    pub fn forward(&mut self, mut x: Array4<f32>, training: bool) -> Array4<f32> {
        let c = self.channels();
        let data = x.as_slice_mut().expect("standard layout");
        let rows = data.len() / c;
        if !training {
            let scale: Vec<f32> = (0..c)
                .map(|j| self.gamma.value[j] / (self.running_var.value[j] + self.epsilon).sqrt())
                .collect();
            let shift: Vec<f32> = (0..c)
                .map(|j| self.beta.value[j] - self.running_mean.value[j] * scale[j])
                .collect();
            data.par_chunks_mut(c * ROWS_PER_TASK).for_each(|chunk| {
                for row in chunk.chunks_exact_mut(c) {
                    for ((v, scale), shift) in row.iter_mut().zip(&scale).zip(&shift) {
                        *v = *v * scale + shift;
                    }
                }
            });
            return x;
        }
        // Sum and sum of squares in one pass; in f64 they leave the variance exact enough.
        let (sums, squares) =
            column_sum_pairs(data, data, c, |v, _| (v as f64, v as f64 * v as f64));
        let mean: Vec<f64> = sums.iter().map(|s| s / rows as f64).collect();
        let var: Vec<f64> = squares
            .iter()
            .zip(&mean)
            .map(|(s, m)| (s / rows as f64 - m * m).max(0.0))
            .collect();
        self.inv_std = var
            .iter()
            .map(|&v| (1.0 / (v + self.epsilon as f64).sqrt()) as f32)
            .collect();
        for j in 0..c {
            let m = self.momentum;
            self.running_mean.value[j] =
                (1.0 - m) * self.running_mean.value[j] + m * mean[j] as f32;
            self.running_var.value[j] = (1.0 - m) * self.running_var.value[j] + m * var[j] as f32;
        }
        let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        let mut x_hat = std::mem::take(&mut self.x_hat);
        x_hat.resize(data.len(), 0.0);
        let (gamma, beta, inv_std) = (&self.gamma.value, &self.beta.value, &self.inv_std);
        data.par_chunks_mut(c * ROWS_PER_TASK)
            .zip(x_hat.par_chunks_mut(c * ROWS_PER_TASK))
            .for_each(|(block, hat_block)| {
                normalize_block(block, hat_block, [&mean, inv_std, gamma, beta])
            });
        self.x_hat = x_hat;
        x
    }

    pub fn backward(&mut self, mut dy: Array4<f32>) -> Array4<f32> {
        let c = self.channels();
        let x_hat = &self.x_hat;
        let data = dy.as_slice_mut().expect("standard layout");
        let rows = (data.len() / c) as f32;
        let (dbeta, dgamma) =
            column_sum_pairs(data, x_hat, c, |g, h| (g as f64, g as f64 * h as f64));
        self.beta.grad = dbeta.iter().map(|&v| v as f32).collect();
        self.gamma.grad = dgamma.iter().map(|&v| v as f32).collect();
        let scale: Vec<f32> = (0..c)
            .map(|j| self.gamma.value[j] * self.inv_std[j] / rows)
            .collect();
        let (dbeta, dgamma) = (&self.beta.grad, &self.gamma.grad);
        data.par_chunks_mut(c * ROWS_PER_TASK)
            .zip(x_hat.par_chunks(c * ROWS_PER_TASK))
            .for_each(|(block, hat_block)| {
                input_gradient_block(block, hat_block, rows, [&scale, dbeta, dgamma])
            });
        dy
    }

    /// Frees what only training needs (see [`super::Net::release_training_state`]).
    pub fn release_training_state(&mut self) {
        self.gamma.release_training_state();
        self.beta.release_training_state();
        self.x_hat = Vec::new();
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![
            &mut self.gamma,
            &mut self.beta,
            &mut self.running_mean,
            &mut self.running_var,
        ]
    }
}

/// Normalises one block of rows: `x_hat = (x - mean) * inv_std` and `y = gamma * x_hat + beta`.
#[multiversion(targets = "simd")]
fn normalize_block(block: &mut [f32], hat_block: &mut [f32], channels: [&[f32]; 4]) {
    let [mean, inv_std, gamma, beta] = channels;
    let c = mean.len();
    for (row, hat) in block.chunks_exact_mut(c).zip(hat_block.chunks_exact_mut(c)) {
        let per_channel = mean.iter().zip(inv_std).zip(gamma).zip(beta);
        for ((v, h), (((mean, inv_std), gamma), beta)) in row.iter_mut().zip(hat).zip(per_channel) {
            *h = (*v - mean) * inv_std;
            *v = gamma * *h + beta;
        }
    }
}

/// The input gradient of one block of rows, in place of the output gradient.
#[multiversion(targets = "simd")]
fn input_gradient_block(block: &mut [f32], hat_block: &[f32], rows: f32, channels: [&[f32]; 3]) {
    let [scale, dbeta, dgamma] = channels;
    let c = scale.len();
    for (row, hat) in block.chunks_exact_mut(c).zip(hat_block.chunks_exact(c)) {
        let per_channel = scale.iter().zip(dbeta).zip(dgamma);
        for ((g, h), ((scale, dbeta), dgamma)) in row.iter_mut().zip(hat).zip(per_channel) {
            *g = scale * (rows * *g - dbeta - h * dgamma);
        }
    }
}

/// [`column_sum_pairs`] of one block of rows.
#[multiversion(targets = "simd")]
fn block_sum_pairs(
    block_a: &[f32],
    block_b: &[f32],
    c: usize,
    f: &(impl Fn(f32, f32) -> (f64, f64) + Sync),
) -> (Vec<f64>, Vec<f64>) {
    let (mut first, mut second) = (vec![0f64; c], vec![0f64; c]);
    for (row_a, row_b) in block_a.chunks_exact(c).zip(block_b.chunks_exact(c)) {
        for (((s, t), &x), &y) in first.iter_mut().zip(&mut second).zip(row_a).zip(row_b) {
            let (p, q) = f(x, y);
            *s += p;
            *t += q;
        }
    }
    (first, second)
}

/// Per-column sums of the two values `f(a, b)` gives for each pair of elements of two
/// `[rows, c]` buffers, in a fixed order (partial sums over fixed row blocks, added in order).
fn column_sum_pairs(
    a: &[f32],
    b: &[f32],
    c: usize,
    f: impl Fn(f32, f32) -> (f64, f64) + Sync,
) -> (Vec<f64>, Vec<f64>) {
    let partials: Vec<(Vec<f64>, Vec<f64>)> = a
        .par_chunks(c * ROWS_PER_TASK)
        .zip(b.par_chunks(c * ROWS_PER_TASK))
        .map(|(block_a, block_b)| block_sum_pairs(block_a, block_b, c, &f))
        .collect();
    partials.iter().fold(
        (vec![0f64; c], vec![0f64; c]),
        |(mut first, mut second), (p, q)| {
            first.iter_mut().zip(p).for_each(|(t, v)| *t += v);
            second.iter_mut().zip(q).for_each(|(t, v)| *t += v);
            (first, second)
        },
    )
}
