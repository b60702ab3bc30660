//! Training on a slice of Fashion-MNIST with fixed seeds: accuracy floors far above chance (10 %),
//! determinism, and the trained-model file round trip. Needs the Debian package
//! dataset-fashion-mnist (`make test` installs it); fails without it.

use indicatif::ProgressBar;
use qnnc::data::{self, Dataset, DatasetKind, Split};
use qnnc::model::{Model, TrainingRecord};
use qnnc::spec::examples::{example_network, EXAMPLE_CNN, EXAMPLE_MLP};
use qnnc::spec::Precision;
use qnnc::train::{self, Net, TrainOptions};

fn fashion(split: Split, limit: usize) -> Dataset {
    data::load(DatasetKind::FashionMnist, None, split, Some(limit)).unwrap_or_else(|e| {
        panic!("Fashion-MNIST is needed (apt-get install dataset-fashion-mnist): {e}")
    })
}

fn options() -> TrainOptions {
    TrainOptions {
        epochs: 2,
        batch: 50,
        learning_rate: 5e-3,
        seed: 7,
    }
}

fn train_small(example: (&str, &str), bits: Precision) -> (Net, f64) {
    let network = example_network(example, bits);
    let mut net = Net::new(&network, 7);
    train::train(
        &mut net,
        &fashion(Split::Train, 1000),
        &options(),
        &ProgressBar::hidden(),
    );
    let accuracy = train::evaluate(&mut net, &fashion(Split::Test, 500), 100).accuracy;
    (net, accuracy)
}

#[test]
fn mlp_learns_at_one_four_and_float_bits() {
    for (bits, floor) in [
        (Precision::Bits(1), 62.0),
        (Precision::Bits(4), 68.0),
        (Precision::Float, 68.0),
    ] {
        let (_, accuracy) = train_small(EXAMPLE_MLP, bits);
        assert!(
            accuracy >= floor,
            "MLP at {bits} bits: {accuracy:.1}% < {floor}%"
        );
    }
}

#[test]
fn cnn_learns_at_one_and_four_bits() {
    for (bits, floor) in [(Precision::Bits(1), 40.0), (Precision::Bits(4), 58.0)] {
        let (_, accuracy) = train_small(EXAMPLE_CNN, bits);
        assert!(
            accuracy >= floor,
            "CNN at {bits} bits: {accuracy:.1}% < {floor}%"
        );
    }
}

fn record(accuracy: f64) -> TrainingRecord {
    TrainingRecord {
        dataset: "fashion-mnist".into(),
        train_images: 1000,
        test_images: 500,
        options: options(),
        history: Vec::new(),
        test_accuracy: accuracy,
    }
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let bytes = |seed: u64| {
        let network = example_network(EXAMPLE_CNN, Precision::Bits(2));
        let mut net = Net::new(&network, seed);
        let data = fashion(Split::Train, 300);
        let options = TrainOptions { seed, ..options() };
        train::train(&mut net, &data, &options, &ProgressBar::hidden());
        Model {
            net,
            training: record(0.0),
        }
        .to_bytes()
    };
    let first = bytes(3);
    assert_eq!(first, bytes(3), "same seed, different model");
    assert_ne!(first, bytes(4), "different seeds, same model");
}

#[test]
fn the_epoch_hook_sees_each_epoch_as_it_ends_and_leaves_the_training_as_it_was() {
    let network = example_network(EXAMPLE_CNN, Precision::Bits(2));
    let data = fashion(Split::Train, 300);
    let test = fashion(Split::Test, 100);
    let trained = |hook: &mut (dyn FnMut(&mut Net, &mut train::EpochStats) -> Result<(), ()>
                             + Send)| {
        let mut net = Net::new(&network, 3);
        let history =
            train::train_reporting(&mut net, &data, &options(), &ProgressBar::hidden(), hook);
        (net, history)
    };
    let mut seen = Vec::new();
    let (mut measured, history) = trained(&mut |net, stats| {
        stats.test_accuracy = Some(train::evaluate(net, &test, 50).accuracy);
        seen.push(stats.epoch);
        Ok(())
    });
    let history = history.unwrap();
    assert_eq!(seen, vec![1, 2]);
    assert!(history.iter().all(|e| e.test_accuracy.is_some()));
    // Evaluating after each epoch changes nothing in the training: the same model, bit for bit.
    let mut plain = Net::new(&network, 3);
    train::train(&mut plain, &data, &options(), &ProgressBar::hidden());
    let bytes = |net: &mut Net| {
        Model {
            net: net.clone(),
            training: record(0.0),
        }
        .to_bytes()
    };
    assert_eq!(bytes(&mut measured), bytes(&mut plain));
    assert_eq!(
        history.last().unwrap().test_accuracy,
        Some(train::evaluate(&mut plain, &test, 50).accuracy)
    );
    // An error from the hook stops the training after that epoch.
    let mut calls = 0;
    let (_, stopped) = trained(&mut |_, _| {
        calls += 1;
        Err(())
    });
    assert_eq!((stopped, calls), (Err(()), 1));
}

#[test]
fn model_file_round_trip_keeps_every_bit_and_the_accuracy() {
    let (net, accuracy) = train_small(EXAMPLE_MLP, Precision::Bits(2));
    let mut model = Model {
        net,
        training: record(accuracy),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mlp2.qnn");
    model.save(&path).unwrap();
    let mut loaded = Model::load(&path).unwrap();
    assert_eq!(loaded.to_bytes(), model.to_bytes());
    assert_eq!(loaded.training, model.training);
    let reloaded = train::evaluate(&mut loaded.net, &fashion(Split::Test, 500), 100).accuracy;
    assert_eq!(reloaded, accuracy);
}
