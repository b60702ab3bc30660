//! Gradient checks of every layer against central finite differences, the straight-through
//! estimators, determinism, and a small training run with an accuracy floor.

use ndarray::Array4;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::act::Act;
use super::avgpool::AvgPool;
use super::batchnorm::BatchNorm;
use super::buffers::Buffers;
use super::conv::{Conv2d, Window};
use super::loss::softmax_cross_entropy;
use super::maxpool::MaxPool;
use super::net::Net;
use super::param::Param;
use super::weights::QuantWeights;
use crate::spec::{Network, Shape, Spec};

fn random(shape: (usize, usize, usize, usize), seed: u64) -> Array4<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array4::from_shape_fn(shape, |_| rng.random_range(-1.0..1.0))
}

/// `sum(r * f(x))` and its finite-difference derivative along one coordinate of `x`.
fn numeric_grad(
    f: &mut dyn FnMut(&Array4<f32>) -> Array4<f32>,
    x: &Array4<f32>,
    r: &Array4<f32>,
    index: usize,
) -> f64 {
    let eps = 1e-2f32;
    let mut plus = x.clone();
    plus.as_slice_mut().unwrap()[index] += eps;
    let mut minus = x.clone();
    minus.as_slice_mut().unwrap()[index] -= eps;
    let lp: f64 = (f(&plus) * r).iter().map(|&v| v as f64).sum();
    let lm: f64 = (f(&minus) * r).iter().map(|&v| v as f64).sum();
    (lp - lm) / (2.0 * eps as f64)
}

fn assert_close(analytic: f64, numeric: f64, what: &str) {
    let tolerance = 2e-2 * (1.0 + numeric.abs().max(analytic.abs()));
    assert!(
        (analytic - numeric).abs() <= tolerance,
        "{what}: analytic {analytic} vs numeric {numeric}"
    );
}

fn conv_layer(input: Shape, filters: usize, window: Window, seed: u64) -> Conv2d {
    let out = |size: usize| (size + 2 * window.padding - window.kernel) / window.stride + 1;
    let output = Shape {
        height: out(input.height),
        width: out(input.width),
        channels: filters,
    };
    let fan_in = window.kernel * window.kernel * input.channels;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weights = QuantWeights::init(fan_in, filters, None, &mut rng);
    let bias = Param::trainable("bias", vec![filters], vec![0.1; filters]);
    Conv2d::new(input, output, window, weights, Some(bias))
}

fn check_conv(input: Shape, filters: usize, window: Window) {
    let mut layer = conv_layer(input, filters, window, 3);
    let x = random((2, input.height, input.width, input.channels), 4);
    let mut buffers = stale_buffers(&[2 * layer.output.len(), x.len()]);
    let y = layer.forward(x.clone(), true, &mut buffers);
    let r = random(y.dim(), 5);
    let dx = layer.backward(&r, true, &mut buffers).unwrap();
    let grad_w = layer.weights.param.grad.clone();
    let grad_b = layer.bias.as_ref().unwrap().grad.clone();
    let template = layer.clone();
    for index in (0..x.len()).step_by(7) {
        let mut probe = template.clone();
        let numeric = numeric_grad(
            &mut |x| probe.forward(x.clone(), false, &mut Buffers::default()),
            &x,
            &r,
            index,
        );
        assert_close(dx.as_slice().unwrap()[index] as f64, numeric, "conv dx");
    }
    for index in (0..grad_w.len()).step_by(5) {
        let mut f = |w: &Array4<f32>| {
            let mut probe = template.clone();
            probe.weights.param.value = w.iter().cloned().collect();
            probe.forward(x.clone(), false, &mut Buffers::default())
        };
        let w = Array4::from_shape_vec(
            (1, 1, 1, grad_w.len()),
            template.weights.param.value.clone(),
        )
        .unwrap();
        assert_close(
            grad_w[index] as f64,
            numeric_grad(&mut f, &w, &r, index),
            "conv dW",
        );
    }
    let expected_db: Vec<f32> = (0..filters)
        .map(|j| r.iter().skip(j).step_by(filters).sum())
        .collect();
    for (a, e) in grad_b.iter().zip(&expected_db) {
        assert_close(*a as f64, *e as f64, "conv db");
    }
}

#[test]
fn conv_gradients_match_finite_differences() {
    let shape = Shape {
        height: 5,
        width: 6,
        channels: 3,
    };
    check_conv(
        shape,
        4,
        Window {
            kernel: 3,
            stride: 1,
            padding: 1,
        },
    );
    check_conv(
        shape,
        2,
        Window {
            kernel: 3,
            stride: 2,
            padding: 0,
        },
    );
    check_conv(
        shape,
        3,
        Window {
            kernel: 2,
            stride: 1,
            padding: 1,
        },
    );
}

#[test]
fn dense_gradients_match_finite_differences() {
    // A dense layer is a 1x1 convolution of a 1x1 input.
    check_conv(
        Shape::flat(12),
        5,
        Window {
            kernel: 1,
            stride: 1,
            padding: 0,
        },
    );
}

#[test]
fn batchnorm_gradients_match_finite_differences() {
    let mut layer = BatchNorm::new(3);
    layer.gamma.value = vec![0.5, 1.5, -0.7];
    layer.beta.value = vec![0.1, -0.2, 0.3];
    let x = random((4, 2, 2, 3), 6);
    let y = layer.forward(x.clone(), true);
    let r = random(y.dim(), 7);
    let dx = layer.backward(r.clone());
    let template = layer.clone();
    for index in 0..x.len() {
        let mut probe = template.clone();
        let numeric = numeric_grad(&mut |x| probe.forward(x.clone(), true), &x, &r, index);
        assert_close(
            dx.as_slice().unwrap()[index] as f64,
            numeric,
            "batchnorm dx",
        );
    }
    for j in 0..3 {
        let mut f = |g: &Array4<f32>| {
            let mut probe = template.clone();
            probe.gamma.value = g.iter().cloned().collect();
            probe.forward(x.clone(), true)
        };
        let g = Array4::from_shape_vec((1, 1, 1, 3), template.gamma.value.clone()).unwrap();
        assert_close(
            template.gamma.grad[j] as f64,
            numeric_grad(&mut f, &g, &r, j),
            "dgamma",
        );
    }
    let expected_dbeta: f32 = r.iter().skip(1).step_by(3).sum();
    assert_close(template.beta.grad[1] as f64, expected_dbeta as f64, "dbeta");
}

/// Buffers that hold a NaN-filled tensor of each length: a layer that takes one for its output
/// passes its checks only if it overwrites every value (or zeroes the tensor first).
fn stale_buffers(lengths: &[usize]) -> Buffers {
    let mut buffers = Buffers::default();
    let tensors: Vec<_> = lengths
        .iter()
        .map(|&len| buffers.overwritten((1, 1, 1, len)))
        .collect();
    for mut tensor in tensors {
        tensor.fill(f32::NAN);
        buffers.recycle(tensor);
    }
    buffers
}

#[test]
fn maxpool_gradient_goes_to_the_winner() {
    let input = Shape {
        height: 4,
        width: 5,
        channels: 2,
    };
    let output = Shape {
        height: 2,
        width: 2,
        channels: 2,
    };
    let mut layer = MaxPool::new(input, output, 2, 2);
    let x = random((2, 4, 5, 2), 8);
    let mut buffers = stale_buffers(&[2 * output.len(), x.len()]);
    let y = layer.forward(&x, true, &mut buffers);
    let r = random(y.dim(), 9);
    let dx = layer.backward(&r, &mut buffers);
    let template = layer.clone();
    for index in 0..x.len() {
        let mut probe = template.clone();
        let numeric = numeric_grad(
            &mut |x| probe.forward(x, false, &mut Buffers::default()),
            &x,
            &r,
            index,
        );
        assert_close(dx.as_slice().unwrap()[index] as f64, numeric, "maxpool dx");
    }
    // The last column of the 5-wide input is outside every window.
    assert!(dx.iter().skip(8).step_by(10).all(|&g| g == 0.0));
}

#[test]
fn relu_gradient_matches_finite_differences() {
    let mut layer = Act::new(None);
    let x = random((2, 3, 3, 2), 10).mapv(|v| if v.abs() < 0.05 { 0.3 } else { v });
    let y = layer.forward(x.clone(), true);
    let r = random(y.dim(), 11);
    let dx = layer.backward(r.clone());
    for index in 0..x.len() {
        let mut probe = Act::new(None);
        let numeric = numeric_grad(&mut |x| probe.forward(x.clone(), false), &x, &r, index);
        assert_close(dx.as_slice().unwrap()[index] as f64, numeric, "relu dx");
    }
}

#[test]
fn quantized_activations_pass_gradients_straight_through_inside_the_clip() {
    for bits in [1u32, 2, 4, 8, 16] {
        let mut layer = Act::new(Some(bits));
        let x = Array4::from_shape_vec((1, 1, 1, 6), vec![-1.5, -0.5, 0.0, 0.4, 1.0, 1.2]).unwrap();
        let y = layer.forward(x.clone(), true);
        let dx = layer.backward(Array4::ones((1, 1, 1, 6)));
        let expected: Vec<f32> = x
            .iter()
            .map(|&v| crate::quant::act_passes_gradient(bits, v) as i32 as f32)
            .collect();
        assert_eq!(
            dx.iter().cloned().collect::<Vec<_>>(),
            expected,
            "bits {bits}"
        );
        for (&v, &q) in x.iter().zip(y.iter()) {
            let code = crate::quant::act_code(bits, v);
            assert_eq!(q, crate::quant::act_value(bits, code), "bits {bits}");
        }
    }
}

#[test]
fn quantized_weights_use_codes_and_pass_gradients_inside_the_range() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for bits in [1u32, 2, 3, 4, 8, 16] {
        let mut w = QuantWeights::init(50, 4, Some(bits), &mut rng);
        w.param.value[0] = 10.0; // far outside every range: clipped, no gradient
        w.quantize();
        let step = w.step();
        for (&latent, &effective) in w.param.value.iter().zip(w.effective()) {
            let code = crate::quant::weight_code(bits, step, latent);
            assert_eq!(effective, code as f32 * step);
        }
        w.set_gradient(vec![1.0; 200]);
        for (&latent, &g) in w.param.value.iter().zip(&w.param.grad) {
            let passes = crate::quant::weight_passes_gradient(bits, step, latent);
            assert_eq!(g, passes as i32 as f32, "bits {bits} w {latent}");
        }
        assert_eq!(
            w.param.grad[0],
            if bits >= 9 { 1.0 } else { 0.0 },
            "bits {bits}"
        );
    }
}

#[test]
fn softmax_cross_entropy_gradient_matches_finite_differences() {
    let logits = random((3, 1, 1, 4), 13);
    let labels = [2u8, 0, 3];
    let (_, grad, _) = softmax_cross_entropy(&logits, &labels);
    for index in 0..logits.len() {
        let eps = 1e-2;
        let mut plus = logits.clone();
        plus.as_slice_mut().unwrap()[index] += eps;
        let mut minus = logits.clone();
        minus.as_slice_mut().unwrap()[index] -= eps;
        let numeric = (softmax_cross_entropy(&plus, &labels).0
            - softmax_cross_entropy(&minus, &labels).0)
            / (2.0 * eps);
        assert_close(
            grad.as_slice().unwrap()[index] as f64,
            numeric as f64,
            "softmax-ce",
        );
    }
}

fn check_avgpool(input: Shape, size: usize, stride: usize) {
    let out = |n: usize| (n - size) / stride + 1;
    let output = Shape {
        height: out(input.height),
        width: out(input.width),
        channels: input.channels,
    };
    let layer = AvgPool::new(input, output, size, stride);
    let x = random((2, input.height, input.width, input.channels), 20);
    let y = layer.forward(&x);
    // Each output is the mean of its window.
    let (c, w) = (input.channels, input.width);
    let first: f32 = (0..size)
        .flat_map(|ky| (0..size).map(move |kx| (ky * w + kx) * c + 1))
        .map(|i| x.as_slice().unwrap()[i])
        .sum::<f32>()
        / (size * size) as f32;
    assert!(
        (y[[0, 0, 0, 1]] - first).abs() < 1e-6,
        "{} vs {first}",
        y[[0, 0, 0, 1]]
    );
    let r = random(y.dim(), 21);
    let dx = layer.backward(&r);
    for index in 0..x.len() {
        let numeric = numeric_grad(&mut |x| layer.forward(x), &x, &r, index);
        assert_close(dx.as_slice().unwrap()[index] as f64, numeric, "avgpool dx");
    }
}

#[test]
fn avgpool_gradients_match_finite_differences() {
    let shape = |height, width| Shape {
        height,
        width,
        channels: 3,
    };
    // Non-overlapping windows with an uncovered last column, overlapping windows, global.
    check_avgpool(shape(4, 5), 2, 2);
    check_avgpool(shape(5, 5), 3, 2);
    check_avgpool(shape(4, 4), 4, 4);
}

/// A small network with a residual block (at 7x7x3) and global average pooling, without batch
/// norm (whose training and inference modes differ), so that finite differences of inference
/// passes check the training gradients.
fn residual_net(precision: &str) -> Network {
    let text = format!(
        r#"
name = "r"
input = {{ height = 28, width = 28, channels = 1 }}
classes = 10
[precision]
weights = {precision}
activations = {precision}
[[layers]]
kind = "conv2d"
filters = 3
kernel = 4
stride = 4
[[layers]]
kind = "act"
name = "in"
[[layers]]
kind = "conv2d"
filters = 3
kernel = 3
padding = 1
[[layers]]
kind = "act"
[[layers]]
kind = "add"
from = "in"
[[layers]]
kind = "act"
[[layers]]
kind = "avgpool"
[[layers]]
kind = "act"
[[layers]]
kind = "flatten"
[[layers]]
kind = "dense"
units = 10
"#
    );
    Spec::parse(&text, false, "r.toml")
        .and_then(|spec| spec.build("r.toml"))
        .unwrap()
}

#[test]
fn a_net_with_a_skip_has_the_gradients_of_finite_differences() {
    let network = residual_net("\"float\"");
    let mut net = Net::new(&network, 3);
    // Biases away from zero keep the ReLUs' inputs off their kink.
    for (_, p) in net.params_mut() {
        if p.name == "bias" {
            p.value.iter_mut().for_each(|b| *b = 0.2);
        }
    }
    let x = random((2, 28, 28, 1), 22);
    let y = net.forward(x.clone(), true);
    let r = random(y.dim(), 23);
    net.backward(r.clone());
    let loss = |net: &mut Net| -> f64 {
        (net.forward(x.clone(), false) * &r)
            .iter()
            .map(|&v| v as f64)
            .sum()
    };
    let template = net.clone();
    let count = template.clone().params_mut().len();
    let mut checked = 0;
    for p in 0..count {
        let (layer, analytic) = {
            let mut copy = template.clone();
            let (layer, param) = copy.params_mut().swap_remove(p);
            (layer.to_string(), param.grad.clone())
        };
        for index in (0..analytic.len()).step_by(3) {
            let eps = 1e-2f32;
            let shifted = |delta: f32| {
                let mut probe = template.clone();
                probe.params_mut()[p].1.value[index] += delta;
                loss(&mut probe)
            };
            let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps as f64);
            assert_close(
                analytic[index] as f64,
                numeric,
                &format!("{layer} [{index}]"),
            );
            checked += 1;
        }
    }
    // The first convolution's weights reach the logits along the skip as well as through the
    // block: their gradients match only if the skip's gradient is added on the way back.
    assert!(checked > 50, "{checked}");
}

#[test]
fn a_net_with_a_skip_trains_the_same_on_every_run() {
    let network = residual_net("4");
    let data = crate::data::Dataset {
        height: 28,
        width: 28,
        channels: 1,
        classes: 10,
        images: (0..40 * 784).map(|i| (i * 37 % 251) as u8).collect(),
        labels: (0..40).map(|i| (i % 10) as u8).collect(),
    };
    let options = super::TrainOptions {
        epochs: 2,
        batch: 8,
        ..super::TrainOptions::default()
    };
    let run = || {
        let mut net = Net::new(&network, 5);
        let history = super::train(&mut net, &data, &options, &indicatif::ProgressBar::hidden());
        (net.tensors(), history)
    };
    let (first, first_history) = run();
    let (second, second_history) = run();
    assert_eq!(first, second);
    let figures = |history: &[super::EpochStats]| -> Vec<(f32, f64)> {
        history.iter().map(|e| (e.loss, e.train_accuracy)).collect()
    };
    assert_eq!(figures(&first_history), figures(&second_history));
    // The training moved the weights.
    assert_ne!(first, Net::new(&network, 5).tensors());
}
