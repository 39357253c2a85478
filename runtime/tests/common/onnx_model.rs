//! A tiny image model written as ONNX through tract's protobuf types, and the same function
//! computed by hand, so the engine can be checked against an independent reference.
//!
//! fp32 graph: `image` (N,3,S,S) → Conv(3→M·D, 3×3, stride 2, pad 1) → Relu →
//! ReduceMean(H, W) → Reshape → `parts` (N,M,D).
//!
//! int8 graph, in the contract's QOperator form: `image` → ReduceMean(H, W) (N,3) →
//! QuantizeLinear(u8, zero point 128) → MatMulInteger(× s8 weights, a_zp 128) → Cast →
//! Mul(per-column scale) → Add(bias) → Reshape → `parts`.

use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::type_proto::{Tensor as TensorType, Value as TypeValue};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

use super::rng::Rng;

/// Parameters of the tiny model.
#[derive(Clone, Debug)]
pub struct TinyModel {
    /// S.
    pub image_size: usize,
    /// M.
    pub parts: usize,
    /// D.
    pub embed: usize,
    /// Conv weight (M·D, 3, 3, 3).
    pub conv_weight: Vec<f32>,
    /// Conv bias (M·D).
    pub conv_bias: Vec<f32>,
}

impl TinyModel {
    /// Random weights.
    pub fn random(image_size: usize, parts: usize, embed: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let channels = parts * embed;
        Self {
            image_size,
            parts,
            embed,
            conv_weight: rng.vec(channels * 27, -0.5, 0.5),
            conv_bias: rng.vec(channels, -0.1, 0.1),
        }
    }

    /// The fp32 model as ONNX bytes; `batch` names the batch axis (`None`: fixed at 1).
    pub fn fp32_onnx(&self, batch: Option<&str>) -> Vec<u8> {
        let channels = (self.parts * self.embed) as i64;
        let nodes = vec![
            node(
                "Conv",
                &["image", "conv.weight", "conv.bias"],
                "conv",
                vec![
                    ints("kernel_shape", &[3, 3]),
                    ints("strides", &[2, 2]),
                    ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            node("Relu", &["conv"], "relu", vec![]),
            node(
                "ReduceMean",
                &["relu"],
                "mean",
                vec![ints("axes", &[2, 3]), int("keepdims", 0)],
            ),
            node("Reshape", &["mean", "shape"], "parts", vec![]),
        ];
        let initializers = vec![
            f32_tensor("conv.weight", &[channels, 3, 3, 3], &self.conv_weight),
            f32_tensor("conv.bias", &[channels], &self.conv_bias),
            i64_tensor("shape", &[0, self.parts as i64, self.embed as i64]),
        ];
        self.model(nodes, initializers, batch)
    }

    /// The int8 model as ONNX bytes (weights derived from the seed, not from the fp32 ones).
    pub fn int8_onnx(&self, seed: u64) -> Vec<u8> {
        let mut rng = Rng::new(seed);
        let columns = self.parts * self.embed;
        let weight: Vec<u8> = (0..3 * columns)
            .map(|_| (rng.next_u64() % 255) as u8)
            .map(|b| b.wrapping_sub(127))
            .collect();
        let nodes = vec![
            node(
                "ReduceMean",
                &["image"],
                "mean",
                vec![ints("axes", &[2, 3]), int("keepdims", 0)],
            ),
            node(
                "QuantizeLinear",
                &["mean", "x.scale", "x.zero"],
                "xq",
                vec![],
            ),
            node("MatMulInteger", &["xq", "w.q", "x.zero"], "acc", vec![]),
            node(
                "Cast",
                &["acc"],
                "accf",
                vec![int("to", DataType::Float as i64)],
            ),
            node("Mul", &["accf", "w.scale"], "scaled", vec![]),
            node("Add", &["scaled", "bias"], "biased", vec![]),
            node("Reshape", &["biased", "shape"], "parts", vec![]),
        ];
        let initializers = vec![
            f32_tensor("x.scale", &[], &[1.0 / 64.0]),
            raw_tensor("x.zero", DataType::Uint8, &[], vec![128]),
            raw_tensor("w.q", DataType::Int8, &[3, columns as i64], weight),
            f32_tensor("w.scale", &[columns as i64], &rng.vec(columns, 0.001, 0.01)),
            f32_tensor("bias", &[columns as i64], &rng.vec(columns, -0.1, 0.1)),
            i64_tensor("shape", &[0, self.parts as i64, self.embed as i64]),
        ];
        self.model(nodes, initializers, Some("N"))
    }

    fn model(
        &self,
        nodes: Vec<NodeProto>,
        initializer: Vec<TensorProto>,
        batch: Option<&str>,
    ) -> Vec<u8> {
        let s = self.image_size as i64;
        let graph = GraphProto {
            name: "tiny".into(),
            node: nodes,
            initializer,
            input: vec![value_info("image", batch, &[3, s, s])],
            output: vec![value_info(
                "parts",
                batch,
                &[self.parts as i64, self.embed as i64],
            )],
            ..Default::default()
        };
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            producer_name: "xrvlm-runtime tests".into(),
            graph: Some(graph),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// Parts (M·D) of one preprocessed image (3, S, S), computed directly.
    pub fn parts(&self, image: &[f32]) -> Vec<f32> {
        let s = self.image_size;
        let out = (s + 2 - 3) / 2 + 1;
        let channels = self.parts * self.embed;
        let pixel = |c: usize, y: isize, x: isize| -> f64 {
            if y < 0 || x < 0 || y >= s as isize || x >= s as isize {
                0.0
            } else {
                f64::from(image[(c * s + y as usize) * s + x as usize])
            }
        };
        (0..channels)
            .map(|o| {
                let mut sum = 0.0;
                for oy in 0..out {
                    for ox in 0..out {
                        let mut acc = f64::from(self.conv_bias[o]);
                        for c in 0..3 {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let w = self.conv_weight[((o * 3 + c) * 3 + ky) * 3 + kx];
                                    let y = (2 * oy + ky) as isize - 1;
                                    let x = (2 * ox + kx) as isize - 1;
                                    acc += f64::from(w) * pixel(c, y, x);
                                }
                            }
                        }
                        sum += acc.max(0.0);
                    }
                }
                (sum / (out * out) as f64) as f32
            })
            .collect()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn raw_tensor(name: &str, data_type: DataType, dims: &[i64], raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: data_type as i32,
        dims: dims.to_vec(),
        raw_data,
        ..Default::default()
    }
}

fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    raw_tensor(name, DataType::Float, dims, raw)
}

fn i64_tensor(name: &str, values: &[i64]) -> TensorProto {
    let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    raw_tensor(name, DataType::Int64, &[values.len() as i64], raw)
}

/// A float tensor value info of shape (batch, rest…).
fn value_info(name: &str, batch: Option<&str>, rest: &[i64]) -> ValueInfoProto {
    let first = match batch {
        Some(symbol) => dimension::Value::DimParam(symbol.into()),
        None => dimension::Value::DimValue(1),
    };
    let dims = std::iter::once(first)
        .chain(rest.iter().map(|&v| dimension::Value::DimValue(v)))
        .map(|value| Dimension {
            value: Some(value),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TensorType {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
