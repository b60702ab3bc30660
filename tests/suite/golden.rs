//! The golden model against a second, naive implementation of the same integer semantics
//! (direct loops, no packing, no float products, no fusion) on random networks.

use crate::common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use qnnc::golden::*;
use qnnc::ir::{build, passes, Graph};
use qnnc::spec::examples::example_network;
use qnnc::spec::{Precision as SpecPrecision, Spec};
use qnnc::train::Net;

/// A network at `bits` with random weights, batch-norm statistics measured on random images
/// and random batch-norm gains (some negative) and offsets.
fn calibrated_net(spec_text: &str, bits: u8, seed: u64) -> Net {
    let network = example_network(("t", spec_text), SpecPrecision::Bits(bits));
    let mut net = Net::new(&network, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (_, param) in net.params_mut() {
        match param.name {
            "gamma" => param
                .value
                .iter_mut()
                .for_each(|v| *v = rng.random_range(-1.5..1.5)),
            "beta" => param
                .value
                .iter_mut()
                .for_each(|v| *v = rng.random_range(-0.5..0.5)),
            _ => {}
        }
    }
    let images = random_images(64, 784, seed);
    let x = ndarray::Array4::from_shape_vec(
        (64, 28, 28, 1),
        images
            .iter()
            .map(|&p| qnnc::quant::pixel_value(p))
            .collect(),
    )
    .unwrap();
    for _ in 0..40 {
        net.forward(x.clone(), true);
    }
    net
}

fn random_graph(spec_text: &str, bits: u8, seed: u64) -> Graph {
    let net = calibrated_net(spec_text, bits, seed);
    let mut graph = net.to_graph("test").unwrap();
    passes::run(&mut graph, "test", None).unwrap();
    graph
}

fn random_images(count: usize, pixels: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count * pixels)
        .map(|i| if i % 7 == 0 { 255 } else { rng.random() })
        .collect()
}

const TINY: &str = include_str!("../../examples/tiny_cnn.toml");

#[test]
fn golden_equals_the_naive_integer_model_at_every_precision() {
    for bits in [1u8, 2, 3, 4, 5, 8, 16] {
        let graph = random_graph(TINY, bits, bits as u64);
        let golden = Golden::new(&graph, "test").unwrap();
        let images = random_images(70, 784, 99);
        let predictions = golden.run(&images);
        assert_eq!(predictions.len(), 70);
        let mut classes = std::collections::BTreeSet::new();
        for (image, prediction) in images.chunks_exact(784).zip(&predictions) {
            let expected = common::naive(&graph, image);
            assert_eq!(prediction.logits, expected, "bits {bits}");
            assert_eq!(prediction.class, qnnc::kernels::argmax(&expected));
            classes.insert(prediction.class);
        }
        // Random weights still separate random images into several classes: the comparison
        // is not between two constant outputs.
        assert!(classes.len() > 1, "bits {bits}: every image in one class");
    }
}

#[test]
fn bipolar_layers_take_the_xnor_path_and_agree() {
    // At one bit every layer after the first has bipolar weights and inputs.
    let graph = random_graph(TINY, 1, 5);
    let golden = Golden::unfused(&graph, "test").unwrap();
    let image = random_images(1, 784, 3);
    let traces = golden.trace(&image);
    let names: Vec<&str> = traces.iter().map(|t| t.node.as_str()).collect();
    assert!(names.contains(&"pool1"), "{names:?}");
    assert_eq!(traces.last().unwrap().values, common::naive(&graph, &image));
    assert!(traces.iter().any(|t| t.values.iter().all(|v| v.abs() == 1)));
}

#[test]
fn folding_keeps_the_float_model_decisions() {
    // The integer model's classes equal the float model's on nearly every image: folding is
    // exact up to float rounding at the quantizer's boundaries.
    let text = include_str!("../../examples/fmnist_mlp.toml");
    for bits in [1u8, 2, 4, 8] {
        let mut net = calibrated_net(text, bits, 11);
        let images = random_images(200, 784, 8);
        let mut graph = net.to_graph("test").unwrap();
        passes::run(&mut graph, "test", None).unwrap();
        let golden = Golden::new(&graph, "test").unwrap().run(&images);
        let data = qnnc::data::Dataset {
            height: 28,
            width: 28,
            channels: 1,
            classes: 10,
            images: images.clone(),
            labels: golden.iter().map(|p| p.class as u8).collect(),
        };
        let agreement = qnnc::train::evaluate(&mut net, &data, 100).accuracy;
        assert!(
            agreement >= 98.0,
            "bits {bits}: float and integer agree on {agreement}%"
        );
    }
}

#[test]
fn specs_without_weights_are_refused() {
    let spec = Spec::parse(TINY, false, "tiny.toml").unwrap();
    let network = spec.build("tiny.toml").unwrap();
    let mut graph = build::from_network(&network, "tiny.toml").unwrap();
    passes::run(&mut graph, "tiny.toml", None).unwrap();
    assert!(Golden::new(&graph, "tiny.toml").is_err());
}
