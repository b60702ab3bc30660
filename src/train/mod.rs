//! Quantization-aware training on ndarray: layers with straight-through estimators, Adam, and
//! the training and evaluation loops.

pub mod act;
pub mod avgpool;
pub mod batchnorm;
mod buffers;
pub mod conv;
pub mod loss;
mod lower;
pub mod maxpool;
pub mod memory;
pub mod net;
pub mod param;
pub mod weights;

#[cfg(test)]
mod tests;

use std::time::Instant;

use indicatif::ProgressBar;
use ndarray::Array4;
use serde::{Deserialize, Serialize};

use crate::data::{shuffled_indices, Dataset};
use crate::quant::pixel_value;
pub use net::{Net, Tensor};
use param::Adam;

/// How to train.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate of Adam; it decays to zero along a cosine over the run.
    pub learning_rate: f32,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 5,
            batch: 100,
            learning_rate: 2e-3,
            seed: 1,
        }
    }
}

/// What one epoch did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f32,
    /// Running accuracy on the training batches, in percent.
    pub train_accuracy: f64,
    /// Throughput is a measurement, not a property of the model: model files leave it out so
    /// that the same training gives the same bytes.
    #[serde(skip)]
    pub img_per_s: f64,
    /// Accuracy on the test set after the epoch, in percent, when the training measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
}

/// Accuracy of a network on a data set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub correct: usize,
    pub total: usize,
    /// In percent.
    pub accuracy: f64,
    pub loss: f32,
}

/// Images `indices` of `data` as a batch of pixel values `[n, h, w, c]`.
pub fn batch_tensor(data: &Dataset, indices: &[usize]) -> Array4<f32> {
    let mut x = Array4::<f32>::zeros((indices.len(), data.height, data.width, data.channels));
    let per_image = data.pixels_per_image();
    // A table, not a division a pixel.
    let pixel_values: [f32; 256] = std::array::from_fn(|p| pixel_value(p as u8));
    for (dst, &i) in x
        .as_slice_mut()
        .expect("standard layout")
        .chunks_exact_mut(per_image)
        .zip(indices)
    {
        for (d, &p) in dst.iter_mut().zip(data.image(i)) {
            *d = pixel_values[p as usize];
        }
    }
    x
}

/// Trains `net` on `data`; the shuffling and the updates are fixed by `options.seed`.
pub fn train(
    net: &mut Net,
    data: &Dataset,
    options: &TrainOptions,
    progress: &ProgressBar,
) -> Vec<EpochStats> {
    let no_report = |_: &mut Net, _: &mut EpochStats| Ok::<(), std::convert::Infallible>(());
    match train_reporting(net, data, options, progress, no_report) {
        Ok(history) => history,
        Err(never) => match never {},
    }
}

/// Trains as [`train`] does and calls `after_epoch` as each epoch ends, with the network and
/// that epoch's statistics (to measure the test accuracy and print the row while the training
/// goes on). An error from it stops the training. `progress` counts the images of the epoch.
/// Evaluating the network in `after_epoch` leaves the training as it would have been.
pub fn train_reporting<E: Send>(
    net: &mut Net,
    data: &Dataset,
    options: &TrainOptions,
    progress: &ProgressBar,
    after_epoch: impl FnMut(&mut Net, &mut EpochStats) -> Result<(), E> + Send,
) -> Result<Vec<EpochStats>, E> {
    in_worker(|| train_epochs(net, data, options, progress, after_epoch))
}

fn train_epochs<E>(
    net: &mut Net,
    data: &Dataset,
    options: &TrainOptions,
    progress: &ProgressBar,
    mut after_epoch: impl FnMut(&mut Net, &mut EpochStats) -> Result<(), E>,
) -> Result<Vec<EpochStats>, E> {
    let adam = Adam::default();
    let batches_per_epoch = data.len().div_ceil(options.batch);
    let total_steps = (batches_per_epoch * options.epochs).max(1) as f64;
    let mut step = 0u64;
    let mut history = Vec::with_capacity(options.epochs);
    for epoch in 0..options.epochs {
        progress.reset();
        progress.set_length(data.len() as u64);
        progress.set_message(format!("epoch {}/{}", epoch + 1, options.epochs));
        let start = Instant::now();
        let order = shuffled_indices(data.len(), options.seed, epoch);
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        for (b, indices) in order.chunks(options.batch).enumerate() {
            let x = batch_tensor(data, indices);
            let labels: Vec<u8> = indices.iter().map(|&i| data.labels[i]).collect();
            let logits = net.forward(x, true);
            let (loss, grad, batch_correct) = loss::softmax_cross_entropy(&logits, &labels);
            net.backward(grad);
            step += 1;
            let progress_fraction = (step - 1) as f64 / total_steps;
            let lr = options.learning_rate
                * 0.5
                * (1.0 + (std::f64::consts::PI * progress_fraction).cos()) as f32;
            for (_, param) in net.params_mut() {
                adam.step(param, lr, step);
            }
            loss_sum += loss as f64 * indices.len() as f64;
            correct += batch_correct;
            seen += indices.len();
            progress.inc(indices.len() as u64);
            if b % 20 == 0 || b + 1 == batches_per_epoch {
                progress.set_message(format!(
                    "epoch {}/{} loss {:.4} acc {:.2}%",
                    epoch + 1,
                    options.epochs,
                    loss_sum / seen as f64,
                    100.0 * correct as f64 / seen as f64,
                ));
            }
        }
        let mut stats = EpochStats {
            epoch: epoch + 1,
            loss: (loss_sum / seen.max(1) as f64) as f32,
            train_accuracy: 100.0 * correct as f64 / seen.max(1) as f64,
            img_per_s: seen as f64 / start.elapsed().as_secs_f64(),
            test_accuracy: None,
        };
        after_epoch(net, &mut stats)?;
        history.push(stats);
    }
    Ok(history)
}

/// Test accuracy of `net` in inference mode (batch-norm running statistics).
pub fn evaluate(net: &mut Net, data: &Dataset, batch: usize) -> Evaluation {
    in_worker(|| evaluate_batches(net, data, batch))
}

/// Runs `work` on a thread of rayon's pool, so that the many short parallel loops of a batch
/// are split among the pool's threads directly rather than each handed over from outside the
/// pool (which costs the calling thread a sleep and a wake-up every time).
fn in_worker<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return work();
    }
    let mut result = None;
    rayon::scope(|scope| scope.spawn(|_| result = Some(work())));
    result.expect("the scope ends after its task")
}

fn evaluate_batches(net: &mut Net, data: &Dataset, batch: usize) -> Evaluation {
    let indices: Vec<usize> = (0..data.len()).collect();
    let (mut correct, mut loss_sum) = (0usize, 0f64);
    for chunk in indices.chunks(batch.max(1)) {
        let logits = net.forward(batch_tensor(data, chunk), false);
        let labels: Vec<u8> = chunk.iter().map(|&i| data.labels[i]).collect();
        let (loss, _, batch_correct) = loss::softmax_cross_entropy(&logits, &labels);
        correct += batch_correct;
        loss_sum += loss as f64 * chunk.len() as f64;
    }
    let total = data.len();
    Evaluation {
        correct,
        total,
        accuracy: 100.0 * correct as f64 / total.max(1) as f64,
        loss: (loss_sum / total.max(1) as f64) as f32,
    }
}
