//! Softmax cross-entropy, the training loss.

use ndarray::Array4;

use crate::kernels::argmax;

/// Mean loss over the batch, its gradient with respect to the logits, and how many argmaxes
/// matched the labels.
pub fn softmax_cross_entropy(logits: &Array4<f32>, labels: &[u8]) -> (f32, Array4<f32>, usize) {
    let batch = labels.len();
    let classes = logits.len() / batch.max(1);
    let mut grad = Array4::<f32>::zeros(logits.raw_dim());
    let mut loss = 0f64;
    let mut correct = 0;
    let rows = logits
        .as_slice()
        .expect("standard layout")
        .chunks_exact(classes);
    let grad_rows = grad
        .as_slice_mut()
        .expect("standard layout")
        .chunks_exact_mut(classes);
    for ((row, g), &label) in rows.zip(grad_rows).zip(labels) {
        let label = label as usize;
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = row.iter().map(|&v| (v - max).exp()).collect();
        let sum: f32 = exps.iter().sum();
        loss += (sum.ln() - (row[label] - max)) as f64;
        for (gi, e) in g.iter_mut().zip(&exps) {
            *gi = e / sum / batch as f32;
        }
        g[label] -= 1.0 / batch as f32;
        if argmax(row) == label {
            correct += 1;
        }
    }
    ((loss / batch.max(1) as f64) as f32, grad, correct)
}
