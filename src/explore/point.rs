//! What one point of the design-space sweep measured: its accuracies, its energy under every
//! hardware profile (in total and layer by layer) and its size. The sweep writes these; the Pareto
//! analysis, the report and the plots read them through the accessors here, which treat a
//! missing profile or a non-finite number as "not measured" so that no caller has to.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Energy of one layer under one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerEnergy {
    pub name: String,
    pub e_c: f64,
    pub e_w: f64,
    pub e_a: f64,
}

/// What one point of the sweep measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointResult {
    /// Stable, e.g. "cnn-q4-nl1-nf32" or "mlp-q1-d2-w256".
    pub id: String,
    /// "cnn" or "mlp".
    pub family: String,
    /// 1..=16, of weights and activations.
    pub bits: u32,
    /// Filters per block (cnn) or hidden width (mlp).
    pub width: usize,
    /// Conv layers per block (cnn) or hidden layers (mlp).
    pub depth: usize,
    /// Percent, float-QAT model.
    pub float_accuracy: f64,
    /// Percent, integer golden model: the one accuracy targets use.
    pub integer_accuracy: f64,
    /// Profile name -> energy of one inference.
    pub energy: BTreeMap<String, f64>,
    /// Profile name -> units.
    pub units: BTreeMap<String, String>,
    /// Profile name -> per-layer energy.
    pub layers: BTreeMap<String, Vec<LayerEnergy>>,
    pub weights: u64,
    pub macs: u64,
    pub model_bits: u64,
}

/// E_C, E_W and E_A of one inference, each summed over the layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergySplit {
    pub e_c: f64,
    pub e_w: f64,
    pub e_a: f64,
}

impl EnergySplit {
    pub fn total(&self) -> f64 {
        self.e_c + self.e_w + self.e_a
    }
}

impl PointResult {
    /// Test error of the integer golden model, in percent.
    pub fn test_error(&self) -> f64 {
        100.0 - self.integer_accuracy
    }

    /// Energy of one inference under `profile`, or `None` if it was not measured or is not a
    /// finite number.
    pub fn energy_under(&self, profile: &str) -> Option<f64> {
        self.energy
            .get(profile)
            .copied()
            .filter(|energy| energy.is_finite())
    }

    /// (test error, energy) under `profile`: the two coordinates of the accuracy-energy
    /// trade-off, or `None` if either is not a finite number.
    pub fn error_and_energy(&self, profile: &str) -> Option<(f64, f64)> {
        let error = self.test_error();
        let energy = self.energy_under(profile)?;
        error.is_finite().then_some((error, energy))
    }

    /// E_C, E_W and E_A under `profile`, summed over the layers, or `None` if the layers were
    /// not measured or a sum is not a finite number.
    pub fn energy_split(&self, profile: &str) -> Option<EnergySplit> {
        let layers = self.layers.get(profile)?;
        let split = EnergySplit {
            e_c: layers.iter().map(|layer| layer.e_c).sum(),
            e_w: layers.iter().map(|layer| layer.e_w).sum(),
            e_a: layers.iter().map(|layer| layer.e_a).sum(),
        };
        [split.e_c, split.e_w, split.e_a]
            .iter()
            .all(|term| term.is_finite())
            .then_some(split)
    }
}

/// The precisions present among `points`, ascending, each once.
pub fn precisions<'a>(points: impl IntoIterator<Item = &'a PointResult>) -> Vec<u32> {
    let present: BTreeSet<u32> = points.into_iter().map(|point| point.bits).collect();
    present.into_iter().collect()
}

/// The units of energies under `profile`: those of the first point that names them.
pub fn units_of<'a>(
    points: impl IntoIterator<Item = &'a PointResult>,
    profile: &str,
) -> Option<&'a str> {
    points
        .into_iter()
        .find_map(|point| point.units.get(profile))
        .map(String::as_str)
}

/// "1 bit", "4 bits".
pub fn bits_label(bits: u32) -> String {
    if bits == 1 {
        "1 bit".to_string()
    } else {
        format!("{bits} bits")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A point with one profile, "p", in units "u", whose energy splits 1:2:1 over one layer.
    pub(crate) fn point(id: &str, bits: u32, integer_accuracy: f64, energy: f64) -> PointResult {
        PointResult {
            id: id.to_string(),
            family: "mlp".to_string(),
            bits,
            width: 64,
            depth: 1,
            float_accuracy: integer_accuracy,
            integer_accuracy,
            energy: BTreeMap::from([("p".to_string(), energy)]),
            units: BTreeMap::from([("p".to_string(), "u".to_string())]),
            layers: BTreeMap::from([(
                "p".to_string(),
                vec![LayerEnergy {
                    name: "dense0".to_string(),
                    e_c: energy / 4.0,
                    e_w: energy / 2.0,
                    e_a: energy / 4.0,
                }],
            )]),
            weights: 100,
            macs: 100,
            model_bits: 100 * u64::from(bits),
        }
    }

    #[test]
    fn energy_of_a_missing_profile_or_a_nan_is_not_measured() {
        let mut measured = point("a", 1, 90.0, 5.0);
        assert_eq!(measured.energy_under("p"), Some(5.0));
        assert_eq!(measured.error_and_energy("p"), Some((10.0, 5.0)));
        assert_eq!(measured.energy_under("q"), None);
        measured.energy.insert("p".into(), f64::NAN);
        assert_eq!(measured.energy_under("p"), None);
        measured.energy.insert("p".into(), 5.0);
        measured.integer_accuracy = f64::NAN;
        assert_eq!(measured.error_and_energy("p"), None);
    }

    #[test]
    fn the_split_sums_every_layer() {
        let mut measured = point("a", 1, 90.0, 8.0);
        let layer = measured.layers["p"][0].clone();
        measured.layers.get_mut("p").unwrap().push(layer);
        let split = measured.energy_split("p").unwrap();
        assert_eq!((split.e_c, split.e_w, split.e_a), (4.0, 8.0, 4.0));
        assert_eq!(split.total(), 16.0);
        assert_eq!(measured.energy_split("q"), None);
    }

    #[test]
    fn precisions_are_sorted_and_distinct() {
        let points = [
            point("a", 4, 90.0, 1.0),
            point("b", 1, 90.0, 1.0),
            point("c", 4, 90.0, 1.0),
        ];
        assert_eq!(precisions(&points), vec![1, 4]);
        assert_eq!(units_of(&points, "p"), Some("u"));
        assert_eq!(units_of(&points, "q"), None);
        assert_eq!(bits_label(1), "1 bit");
        assert_eq!(bits_label(8), "8 bits");
    }
}
