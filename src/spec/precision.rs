//! Fixed-point precision of weights or activations: 1..=16 bits, or float (no quantization).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Smallest and largest bit width qnnc trains and compiles.
pub const MIN_BITS: u32 = 1;
pub const MAX_BITS: u32 = 16;

/// A precision as a user states it. One bit means bipolar {-1, +1} (BinaryNet); two or more bits
/// mean signed integer weights and unsigned activation codes; `Float` trains without quantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    Float,
    Bits(u8),
}

impl Precision {
    /// Validates a bit width given as a number.
    pub fn from_bits(bits: i64) -> Result<Self, String> {
        if (MIN_BITS as i64..=MAX_BITS as i64).contains(&bits) {
            Ok(Precision::Bits(bits as u8))
        } else {
            Err(format!(
                "bit width {bits} is out of range {MIN_BITS}..={MAX_BITS}"
            ))
        }
    }

    /// The bit width, or `None` for float.
    pub fn bits(self) -> Option<u32> {
        match self {
            Precision::Float => None,
            Precision::Bits(b) => Some(b as u32),
        }
    }

    pub fn is_bipolar(self) -> bool {
        self == Precision::Bits(1)
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Precision::Float => f.write_str("float"),
            Precision::Bits(b) => write!(f, "{b}"),
        }
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("float") {
            return Ok(Precision::Float);
        }
        match text.parse::<i64>() {
            Ok(bits) => Precision::from_bits(bits),
            Err(_) => Err(format!(
                "'{text}' is not a precision (expected {MIN_BITS}..={MAX_BITS} or \"float\")"
            )),
        }
    }
}

/// Whether `message` is one of the errors above, which reach the spec parser only as text
/// (JSON's with the position after it).
pub(crate) fn is_precision_message(message: &str) -> bool {
    message.starts_with("bit width ")
        || message.starts_with("expected a bit width ")
        || message.contains(&format!(
            "is not a precision (expected {MIN_BITS}..={MAX_BITS} or \"float\")"
        ))
}

impl Serialize for Precision {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Precision::Float => serializer.serialize_str("float"),
            Precision::Bits(b) => serializer.serialize_u8(*b),
        }
    }
}

impl<'de> Deserialize<'de> for Precision {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(format!(
                "expected a bit width {MIN_BITS}..={MAX_BITS} or \"float\""
            ))
        })? {
            Raw::Number(bits) => Precision::from_bits(bits),
            Raw::Text(text) => text.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bits_and_float() {
        assert_eq!("4".parse::<Precision>(), Ok(Precision::Bits(4)));
        assert_eq!("float".parse::<Precision>(), Ok(Precision::Float));
        assert!("0"
            .parse::<Precision>()
            .unwrap_err()
            .contains("out of range"));
        assert!("17"
            .parse::<Precision>()
            .unwrap_err()
            .contains("out of range"));
        assert!("33".parse::<Precision>().is_err());
        assert!("four".parse::<Precision>().is_err());
    }

    #[test]
    fn serde_round_trip() {
        for p in [Precision::Float, Precision::Bits(1), Precision::Bits(16)] {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Precision>(&json).unwrap(), p);
        }
        assert!(serde_json::from_str::<Precision>("0").is_err());
        assert!(serde_json::from_str::<Precision>("true").is_err());
    }
}
