//! Tensor storage recycled from batch to batch.
//!
//! Every batch allocates the same tensors again: the outputs of convolutions and pools and
//! their input gradients. Freed, a large one goes back to the kernel, and the next batch pays
//! for its pages again (page faults and the kernel's zeroing: a tenth of a CNN's training time).
//! The network hands each tensor it is done with to [`Buffers`], and the layers take their
//! outputs from it.

use ndarray::Array4;

/// Freed tensors' storage, at most one buffer of each length (the lengths of a network's
/// tensors repeat every batch), and at most [`Buffers::MAX_BYTES_OF_LARGEST`] times the largest
/// tensor in all. The peak of training comes in the backward pass, which takes these buffers
/// back: the peaks measured in docs/limits.md did not move, and stay within the estimate's
/// three tensors of the largest layer in flight ([`crate::spec::Network::training_bytes`]).
#[derive(Debug, Clone, Default)]
pub struct Buffers {
    free: Vec<Vec<f32>>,
    /// The length of the largest tensor taken so far.
    largest: usize,
}

impl Buffers {
    /// What the free buffers may hold in all, in multiples of the largest tensor.
    pub const MAX_BYTES_OF_LARGEST: usize = 2;

    /// A tensor whose values are left from an earlier use, for an output that the caller
    /// overwrites entirely.
    pub fn overwritten(&mut self, shape: (usize, usize, usize, usize)) -> Array4<f32> {
        let len = shape.0 * shape.1 * shape.2 * shape.3;
        self.largest = self.largest.max(len);
        let values = match self.free.iter().position(|buffer| buffer.len() == len) {
            Some(at) => self.free.swap_remove(at),
            None => vec![0.0; len],
        };
        Array4::from_shape_vec(shape, values).expect("length of the shape")
    }

    /// Keeps the storage of a tensor that is no longer needed, if the bounds allow.
    pub fn recycle(&mut self, tensor: Array4<f32>) {
        if let (values, Some(0)) = tensor.into_raw_vec_and_offset() {
            self.recycle_values(values);
        }
    }

    /// [`Self::recycle`] for a tensor's values alone.
    pub fn recycle_values(&mut self, values: Vec<f32>) {
        let len = values.len();
        let held: usize = self.free.iter().map(Vec::len).sum();
        let fits = held + len <= Self::MAX_BYTES_OF_LARGEST * self.largest;
        if fits && !self.free.iter().any(|buffer| buffer.len() == len) {
            self.free.push(values);
        }
    }

    /// Frees every buffer (see [`super::Net::release_training_state`]).
    pub fn release(&mut self) {
        self.free = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_tensor_is_taken_again() {
        let mut buffers = Buffers::default();
        let tensor = buffers.overwritten((2, 3, 4, 5));
        let address = tensor.as_ptr();
        buffers.recycle(tensor);
        let again = buffers.overwritten((1, 6, 4, 5));
        assert_eq!(again.as_ptr(), address, "the same storage, reshaped");
        assert_eq!(again.dim(), (1, 6, 4, 5));
        buffers.recycle(again);
        assert_ne!(buffers.overwritten((1, 1, 1, 7)).as_ptr(), address);
    }

    #[test]
    fn the_free_buffers_stay_within_their_bounds() {
        let mut buffers = Buffers::default();
        let largest = buffers.overwritten((1, 1, 1, 100));
        buffers.recycle(largest);
        // A second buffer of a length already held is dropped.
        buffers.recycle(Array4::zeros((1, 1, 1, 100)));
        assert_eq!(buffers.free.len(), 1);
        // Up to twice the largest tensor in all, then no more.
        buffers.recycle(Array4::zeros((1, 1, 1, 60)));
        buffers.recycle(Array4::zeros((1, 1, 1, 50)));
        let lengths: Vec<usize> = buffers.free.iter().map(Vec::len).collect();
        assert_eq!(lengths, [100, 60]);
    }
}
