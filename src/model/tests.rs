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
    assert!(
        matches!(&missing, ModelError::Parameters { field, .. } if field == "parameters"),
        "{missing:?}"
    );
    assert!(
        missing.to_string().contains("bn2.gamma is missing"),
        "{missing}"
    );

    let params = json["parameters"].as_object_mut().unwrap();
    params.insert("bn2.gamma".into(), gamma.clone());
    params.insert("bn9.gamma".into(), gamma);
    let extra = Model::from_bytes(json.to_string().as_bytes(), "m.qnn").unwrap_err();
    assert!(
        extra.to_string().contains("bn9.gamma does not belong"),
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
    assert!(error.to_string().contains("not finite"), "{error}");
}

#[test]
fn a_model_of_another_version_is_refused_by_its_own_variant() {
    let mut model = untrained(Precision::Bits(2));
    let mut json: serde_json::Value = serde_json::from_slice(&model.to_bytes()).unwrap();
    json["version"] = serde_json::json!(VERSION + 1);
    let error = Model::from_bytes(json.to_string().as_bytes(), "m.qnn").unwrap_err();
    assert_eq!(
        error,
        ModelError::Version {
            file: "m.qnn".into(),
            found: VERSION + 1,
            expected: VERSION
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "m.qnn: version: file has format version {} but this qnnc ({}) reads version {VERSION}",
            VERSION + 1,
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn a_stored_spec_that_does_not_build_keeps_its_spec_error() {
    let mut model = untrained(Precision::Bits(2));
    let mut json: serde_json::Value = serde_json::from_slice(&model.to_bytes()).unwrap();
    json["spec"]["classes"] = serde_json::json!(1);
    let error = Model::from_bytes(json.to_string().as_bytes(), "m.qnn").unwrap_err();
    assert!(
        matches!(&error, ModelError::Spec(SpecError::Value { field, .. }) if field == "classes"),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "m.qnn: spec.classes: must be at least 2");
}
