//! The example networks, built in so that benchmarks and tests run from any folder.

use super::{Network, Overrides, Precision, Spec};

pub const EXAMPLE_MLP: (&str, &str) = ("mlp", include_str!("../../examples/fmnist_mlp.toml"));
pub const EXAMPLE_CNN: (&str, &str) = ("cnn", include_str!("../../examples/fmnist_cnn.toml"));

/// An example network at a precision.
pub fn example_network(example: (&str, &str), bits: Precision) -> Network {
    let (name, text) = example;
    let origin = format!("examples/fmnist_{name}.toml");
    let mut spec = Spec::parse(text, false, &origin).expect("example spec parses");
    spec.apply(
        &Overrides {
            bits: Some(bits),
            ..Overrides::default()
        },
        &origin,
    )
    .expect("example spec takes --bits");
    spec.build(&origin).expect("example spec is valid")
}
