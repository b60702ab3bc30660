//! A named tensor of a layer: its values and, if trainable, its gradient and Adam moments.

use multiversion::multiversion;
use rayon::prelude::*;

/// One parameter or state tensor of a layer, stored flat in row-major order.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub value: Vec<f32>,
    /// Empty for state that is not trained (batch-norm running statistics).
    pub grad: Vec<f32>,
    pub adam_m: Vec<f32>,
    pub adam_v: Vec<f32>,
    /// Latent values are kept inside [-clip, clip] after every update (binary weights).
    pub clip: Option<f32>,
}

impl Param {
    pub fn trainable(name: &'static str, shape: Vec<usize>, value: Vec<f32>) -> Self {
        let len = value.len();
        debug_assert_eq!(len, shape.iter().product::<usize>());
        Param {
            name,
            shape,
            value,
            grad: vec![0.0; len],
            adam_m: vec![0.0; len],
            adam_v: vec![0.0; len],
            clip: None,
        }
    }

    pub fn state(name: &'static str, shape: Vec<usize>, value: Vec<f32>) -> Self {
        debug_assert_eq!(value.len(), shape.iter().product::<usize>());
        Param {
            name,
            shape,
            value,
            grad: Vec::new(),
            adam_m: Vec::new(),
            adam_v: Vec::new(),
            clip: None,
        }
    }

    pub fn is_trainable(&self) -> bool {
        !self.grad.is_empty()
    }

    /// Frees the gradient and the Adam moments once training is over; the value stays.
    pub fn release_training_state(&mut self) {
        self.grad = Vec::new();
        self.adam_m = Vec::new();
        self.adam_v = Vec::new();
    }
}

/// Adam with bias correction (Kingma and Ba, 2015).
#[derive(Debug, Clone, Copy)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

impl Adam {
    /// One update of `param` with learning rate `lr` at step `t` (counted from 1).
    pub fn step(&self, param: &mut Param, lr: f32, t: u64) {
        if param.grad.is_empty() {
            return;
        }
        let correction1 = 1.0 - self.beta1.powf(t as f32);
        let correction2 = 1.0 - self.beta2.powf(t as f32);
        let step_size = lr * correction2.sqrt() / correction1;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.epsilon * correction2.sqrt());
        let clip = param.clip.unwrap_or(f32::INFINITY);
        const CHUNK: usize = 1 << 14;
        param
            .value
            .par_chunks_mut(CHUNK)
            .zip(param.grad.par_chunks(CHUNK))
            .zip(param.adam_m.par_chunks_mut(CHUNK))
            .zip(param.adam_v.par_chunks_mut(CHUNK))
            .for_each(|(((values, grads), ms), vs)| {
                let update = AdamUpdate {
                    b1,
                    b2,
                    eps,
                    step_size,
                    clip,
                };
                adam_update(update, values, grads, ms, vs)
            });
    }
}

/// The constants of one Adam step.
#[derive(Debug, Clone, Copy)]
struct AdamUpdate {
    b1: f32,
    b2: f32,
    eps: f32,
    step_size: f32,
    clip: f32,
}

#[multiversion(targets = "simd")]
fn adam_update(u: AdamUpdate, values: &mut [f32], grads: &[f32], ms: &mut [f32], vs: &mut [f32]) {
    for (((w, &g), m), v) in values.iter_mut().zip(grads).zip(ms).zip(vs) {
        *m = u.b1 * *m + (1.0 - u.b1) * g;
        *v = u.b2 * *v + (1.0 - u.b2) * g * g;
        *w = (*w - u.step_size * *m / (v.sqrt() + u.eps)).clamp(-u.clip, u.clip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_minimises_a_quadratic_and_respects_the_clip() {
        let mut p = Param::trainable("w", vec![2], vec![3.0, -2.0]);
        let adam = Adam::default();
        for t in 1..=2000 {
            p.grad = p.value.iter().map(|w| 2.0 * (w - 0.5)).collect();
            adam.step(&mut p, 0.01, t);
        }
        assert!(
            p.value.iter().all(|w| (w - 0.5).abs() < 1e-2),
            "{:?}",
            p.value
        );
        p.clip = Some(0.25);
        p.grad = vec![0.0, 0.0];
        adam.step(&mut p, 0.01, 2001);
        assert!(p.value.iter().all(|w| w.abs() <= 0.25));
    }
}
