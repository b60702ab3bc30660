//! Constant tensors of an ONNX file: decoding initializers and Constant nodes, and encoding
//! the initializers export writes.

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::TensorProto;

/// A constant's shape and values (integers are converted exactly up to 2^24).
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    pub dims: Vec<usize>,
    pub values: Vec<f64>,
}

impl Constant {
    pub fn scalar(&self) -> Option<f64> {
        (self.values.len() == 1).then(|| self.values[0])
    }
}

/// Largest constant import decodes, in elements: far beyond any network the RTL can hold.
const MAX_ELEMENTS: usize = 1 << 26;

/// Decodes a tensor, or says why not.
pub fn decode(t: &TensorProto) -> Result<Constant, String> {
    if !t.external_data.is_empty() {
        return Err("stores its data in an external file, which import does not read".into());
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    let mut count: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| format!("has a negative dimension {d}"))?;
        count = count
            .checked_mul(d)
            .filter(|&c| c <= MAX_ELEMENTS)
            .ok_or("is too large")?;
        dims.push(d);
    }
    let raw = &t.raw_data;
    let from_raw = |width: usize| -> Result<Vec<[u8; 8]>, String> {
        if raw.len() != count * width {
            return Err(format!(
                "has {} bytes of data for {count} elements of {width} bytes",
                raw.len()
            ));
        }
        Ok(raw
            .chunks_exact(width)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..width].copy_from_slice(c);
                b
            })
            .collect())
    };
    let data_type = <DataType as protobuf::Enum>::from_i32(t.data_type);
    let values: Vec<f64> = match data_type {
        Some(DataType::FLOAT) if !raw.is_empty() => from_raw(4)?
            .iter()
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect(),
        Some(DataType::FLOAT) => t.float_data.iter().map(|&v| v as f64).collect(),
        Some(DataType::DOUBLE) if !raw.is_empty() => from_raw(8)?
            .iter()
            .map(|b| f64::from_le_bytes(*b))
            .collect(),
        Some(DataType::DOUBLE) => t.double_data.clone(),
        Some(DataType::INT64) if !raw.is_empty() => from_raw(8)?
            .iter()
            .map(|b| i64::from_le_bytes(*b) as f64)
            .collect(),
        Some(DataType::INT64) => t.int64_data.iter().map(|&v| v as f64).collect(),
        Some(DataType::INT32) if !raw.is_empty() => from_raw(4)?
            .iter()
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect(),
        Some(DataType::INT32) => t.int32_data.iter().map(|&v| v as f64).collect(),
        _ => {
            return Err(format!(
                "has data type {} (import reads float, double, int32 and int64)",
                t.data_type
            ))
        }
    };
    if values.len() != count {
        return Err(format!(
            "has {} values for the {count} elements of its shape",
            values.len()
        ));
    }
    Ok(Constant { dims, values })
}

/// An f32 initializer.
pub fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.dims = dims.iter().map(|&d| d as i64).collect();
    t.data_type = DataType::FLOAT as i32;
    t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t
}
