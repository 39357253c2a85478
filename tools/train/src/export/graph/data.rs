//! The contents of an initializer: dimensions plus typed elements, written into a
//! `TensorProto` as little-endian `raw_data` (the compact form every ONNX reader accepts).

use candle_core::{DType, Tensor};
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::TensorProto;

/// The ONNX element types our graphs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    /// 32-bit float.
    F32,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer (shapes, axes, indices).
    I64,
}

impl ElemType {
    /// The `TensorProto.DataType` code.
    pub fn onnx(self) -> i32 {
        let t = match self {
            Self::F32 => DataType::Float,
            Self::I8 => DataType::Int8,
            Self::U8 => DataType::Uint8,
            Self::I32 => DataType::Int32,
            Self::I64 => DataType::Int64,
        };
        t as i32
    }
}

/// Typed elements, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Elements {
    /// f32 values.
    F32(Vec<f32>),
    /// i8 values.
    I8(Vec<i8>),
    /// u8 values.
    U8(Vec<u8>),
    /// i32 values.
    I32(Vec<i32>),
    /// i64 values.
    I64(Vec<i64>),
}

impl Elements {
    fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U8(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::I64(v) => v.len(),
        }
    }

    fn elem_type(&self) -> ElemType {
        match self {
            Self::F32(_) => ElemType::F32,
            Self::I8(_) => ElemType::I8,
            Self::U8(_) => ElemType::U8,
            Self::I32(_) => ElemType::I32,
            Self::I64(_) => ElemType::I64,
        }
    }

    fn raw_bytes(&self) -> Vec<u8> {
        match self {
            Self::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Self::U8(v) => v.clone(),
            Self::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// An initializer's dimensions and elements. The element count is checked against the
/// dimensions when the initializer is added to a graph.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorData {
    dims: Vec<usize>,
    elements: Elements,
}

impl TensorData {
    /// f32 data of shape `dims`.
    pub fn f32(dims: &[usize], data: Vec<f32>) -> Self {
        Self::new(dims, Elements::F32(data))
    }

    /// i8 data of shape `dims`.
    pub fn i8(dims: &[usize], data: Vec<i8>) -> Self {
        Self::new(dims, Elements::I8(data))
    }

    /// u8 data of shape `dims`.
    pub fn u8(dims: &[usize], data: Vec<u8>) -> Self {
        Self::new(dims, Elements::U8(data))
    }

    /// i32 data of shape `dims`.
    pub fn i32(dims: &[usize], data: Vec<i32>) -> Self {
        Self::new(dims, Elements::I32(data))
    }

    /// i64 data of shape `dims`.
    pub fn i64(dims: &[usize], data: Vec<i64>) -> Self {
        Self::new(dims, Elements::I64(data))
    }

    /// A rank-0 f32.
    pub fn scalar_f32(v: f32) -> Self {
        Self::f32(&[], vec![v])
    }

    /// A rank-0 u8.
    pub fn scalar_u8(v: u8) -> Self {
        Self::u8(&[], vec![v])
    }

    /// A rank-0 i64.
    pub fn scalar_i64(v: i64) -> Self {
        Self::i64(&[], vec![v])
    }

    /// A rank-1 i64 vector (shapes, axes, pads).
    pub fn i64_vec(v: &[i64]) -> Self {
        Self::i64(&[v.len()], v.to_vec())
    }

    /// A candle tensor, converted to f32 on the CPU, with its own shape.
    pub fn from_tensor(t: &Tensor) -> candle_core::Result<Self> {
        let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self::f32(t.dims(), data))
    }

    fn new(dims: &[usize], elements: Elements) -> Self {
        Self {
            dims: dims.to_vec(),
            elements,
        }
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The element type.
    pub fn elem_type(&self) -> ElemType {
        self.elements.elem_type()
    }

    /// Number of elements the data holds.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the data holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of elements the dimensions describe (1 for a scalar).
    pub fn expected_len(&self) -> usize {
        self.dims.iter().product()
    }

    /// The `TensorProto` named `name`.
    pub(crate) fn into_proto(self, name: &str) -> TensorProto {
        TensorProto {
            name: name.to_string(),
            dims: self.dims.iter().map(|&d| d as i64).collect(),
            data_type: self.elem_type().onnx(),
            raw_data: self.elements.raw_bytes(),
            ..TensorProto::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_data_is_little_endian_and_typed() {
        let p = TensorData::f32(&[2], vec![1.0, -2.5]).into_proto("w");
        assert_eq!(p.dims, vec![2]);
        assert_eq!(p.data_type, DataType::Float as i32);
        assert_eq!(&p.raw_data[..4], &1.0f32.to_le_bytes());
        assert_eq!(&p.raw_data[4..], &(-2.5f32).to_le_bytes());
        let p = TensorData::i8(&[3], vec![-1, 0, 127]).into_proto("q");
        assert_eq!(p.raw_data, vec![0xff, 0, 127]);
        assert_eq!(p.data_type, DataType::Int8 as i32);
        let p = TensorData::scalar_i64(-2).into_proto("s");
        assert!(p.dims.is_empty());
        assert_eq!(p.raw_data, (-2i64).to_le_bytes().to_vec());
    }

    #[test]
    fn candle_tensor_keeps_its_shape() {
        let t = Tensor::arange(0f32, 6.0, &candle_core::Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        let d = TensorData::from_tensor(&t).unwrap();
        assert_eq!(d.dims(), &[2, 3]);
        assert_eq!(d.len(), d.expected_len());
    }
}
