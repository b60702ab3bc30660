//! The datasets a network is made for: their image shape and classes. Loading them is
//! `data`'s business.

use std::fmt;

/// The datasets that can be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    FashionMnist,
    Mnist,
    #[serde(rename = "cifar10")]
    Cifar10,
}

impl DatasetKind {
    /// The name used in configuration files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar10 => "cifar10",
        }
    }

    /// Image shape as (height, width, channels).
    pub fn shape(self) -> (usize, usize, usize) {
        match self {
            DatasetKind::FashionMnist | DatasetKind::Mnist => (28, 28, 1),
            DatasetKind::Cifar10 => (32, 32, 3),
        }
    }

    /// Number of classes; labels are `0..classes`.
    pub fn classes(self) -> usize {
        10
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
