use super::*;
use crate::spec::examples::{example_network, EXAMPLE_CNN};
use crate::spec::Precision;

fn untrained(bits: Precision) -> Model {
    Model {
        net: Net::new(&example_network(EXAMPLE_CNN, bits), 5),
        training: TrainingRecord {
            dataset: "fashion-mnist".into(),
            train_images: 0,
            test_images: 0,
            options: TrainOptions::default(),
            history: Vec::new(),
            test_accuracy: 0.0,
        },
    }
}

#[test]
fn bytes_round_trip_exactly_at_every_precision() {
    for bits in [Precision::Bits(1), Precision::Bits(7), Precision::Float] {
        let mut model = untrained(bits);
        let bytes = model.to_bytes();
        let mut loaded = Model::from_bytes(&bytes, "m.qnn").unwrap();
        assert_eq!(loaded.to_bytes(), bytes);
        assert_eq!(loaded.net.network, model.net.network);
    }
}

#[test]
fn missing_and_extra_parameters_are_named() {
    let mut model = untrained(Precision::Bits(4));
    let mut json: serde_json::Value = serde_json::from_slice(&model.to_bytes()).unwrap();
    let params = json["parameters"].as_object_mut().unwrap();
    let gamma = params.remove("bn2.gamma").unwrap();
    let missing = Model::from_bytes(json.to_string().as_bytes(), "m.qnn").unwrap_err();
    assert_eq!(missing.field, "parameters");
    assert!(
        missing.message.contains("bn2.gamma is missing"),
        "{missing}"
    );

    let params = json["parameters"].as_object_mut().unwrap();
    params.insert("bn2.gamma".into(), gamma.clone());
    params.insert("bn9.gamma".into(), gamma);
    let extra = Model::from_bytes(json.to_string().as_bytes(), "m.qnn").unwrap_err();
    assert!(
        extra.message.contains("bn9.gamma does not belong"),
        "{extra}"
    );
}

#[test]
fn non_finite_parameters_are_refused() {
    let mut model = untrained(Precision::Bits(2));
    let mut json: serde_json::Value = serde_json::from_slice(&model.to_bytes()).unwrap();
    let nan = base64::engine::general_purpose::STANDARD.encode(f32::NAN.to_le_bytes().repeat(32));
    json["parameters"]["bn1.beta"]["f32_le_base64"] = serde_json::json!(nan);
    let error = Model::from_bytes(json.to_string().as_bytes(), "m.qnn").unwrap_err();
    assert!(error.message.contains("not finite"), "{error}");
}
