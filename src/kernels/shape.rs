//! The shape of a tensor in height-width-channels order.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Height x width x channels of one image or feature map (HWC order everywhere in qnnc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl Shape {
    pub fn flat(channels: usize) -> Self {
        Shape {
            height: 1,
            width: 1,
            channels,
        }
    }

    /// Values in the tensor. Shapes of a validated network or a verified graph are at most
    /// `limits::MAX_TENSOR_LEN`; use [`Shape::checked_len`] on a shape from anywhere else.
    pub fn len(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// Values in the tensor, or `None` if the count overflows.
    pub fn checked_len(&self) -> Option<usize> {
        self.height
            .checked_mul(self.width)?
            .checked_mul(self.channels)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_flat(&self) -> bool {
        self.height == 1 && self.width == 1
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.height, self.width, self.channels)
    }
}
