//! The declared inputs and outputs of an ONNX file, read without loading its weights.
//!
//! Verifying a bundle must not cost the memory of its image model (a ViT-B/16 is 350 MB in
//! fp32). An ONNX file is a protobuf `ModelProto` whose `graph` (field 7) holds `input`
//! (field 11) and `output` (field 12) value infos next to the large `initializer` tensors
//! (field 5). [`read_signature`] walks the protobuf framing with a buffered reader, decodes
//! only the value infos (with tract's own `pb` types) and seeks over everything else.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use prost::Message;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimValue;
use tract_onnx::pb::type_proto::Value as TypeValue;
use tract_onnx::pb::ValueInfoProto;

/// `ModelProto.graph`.
const MODEL_GRAPH: u64 = 7;
/// `GraphProto.input`.
const GRAPH_INPUT: u64 = 11;
/// `GraphProto.output`.
const GRAPH_OUTPUT: u64 = 12;
/// Largest value info accepted: real ones are a few hundred bytes; this bounds what a
/// corrupt length field can make us allocate.
const MAX_VALUE_INFO: u64 = 1 << 20;
/// ONNX `TensorProto.DataType.FLOAT`.
pub const ELEM_FLOAT: i32 = 1;

/// One axis of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named symbolic size (`dim_param`), e.g. the batch axis `N`.
    Symbolic(String),
    /// Neither size nor name given.
    Unknown,
}

/// A declared graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSignature {
    /// Tensor name.
    pub name: String,
    /// ONNX element type (1 = float); `None` for a non-tensor value.
    pub elem_type: Option<i32>,
    /// Declared shape; `None` when the file declares none.
    pub shape: Option<Vec<Dim>>,
}

/// The declared inputs and outputs of a graph.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OnnxSignature {
    /// Graph inputs in file order.
    pub inputs: Vec<TensorSignature>,
    /// Graph outputs in file order.
    pub outputs: Vec<TensorSignature>,
}

/// Why the signature could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// Reading the file failed.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The bytes are not a well-formed ONNX protobuf.
    #[error("{}: not a valid ONNX model: {problem}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What was wrong, with the byte offset.
        problem: String,
    },
}

/// Reads the declared inputs and outputs of the ONNX model at `path`.
pub fn read_signature(path: &Path) -> Result<OnnxSignature, SignatureError> {
    let file = File::open(path).map_err(|source| SignatureError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| SignatureError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut walker = Walker {
        reader: BufReader::new(file),
        pos: 0,
    };
    walker.model(len).map_err(|e| match e {
        WalkError::Io(source) => SignatureError::Io {
            path: path.to_path_buf(),
            source,
        },
        WalkError::Malformed(problem) => SignatureError::Malformed {
            path: path.to_path_buf(),
            problem,
        },
    })
}

enum WalkError {
    Io(io::Error),
    Malformed(String),
}

impl From<io::Error> for WalkError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            WalkError::Malformed("the file ends inside a field".into())
        } else {
            WalkError::Io(e)
        }
    }
}

/// Protobuf wire types.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    Varint,
    Fixed64,
    Bytes,
    Fixed32,
}

struct Walker {
    reader: BufReader<File>,
    pos: u64,
}

impl Walker {
    /// The top-level `ModelProto`, `len` bytes long.
    fn model(&mut self, len: u64) -> Result<OnnxSignature, WalkError> {
        let mut signature = None;
        while self.pos < len {
            let (field, wire) = self.key()?;
            if field == MODEL_GRAPH && wire == Wire::Bytes {
                let graph_len = self.varint()?;
                let end = self.checked_end(graph_len, len)?;
                signature = Some(self.graph(end)?);
            } else {
                self.skip(wire, len)?;
            }
        }
        signature.ok_or_else(|| WalkError::Malformed("the model has no graph".into()))
    }

    /// A `GraphProto` ending at byte `end`.
    fn graph(&mut self, end: u64) -> Result<OnnxSignature, WalkError> {
        let mut signature = OnnxSignature::default();
        while self.pos < end {
            let (field, wire) = self.key()?;
            let list = match (field, wire) {
                (GRAPH_INPUT, Wire::Bytes) => &mut signature.inputs,
                (GRAPH_OUTPUT, Wire::Bytes) => &mut signature.outputs,
                _ => {
                    self.skip(wire, end)?;
                    continue;
                }
            };
            let info_len = self.varint()?;
            self.checked_end(info_len, end)?;
            if info_len > MAX_VALUE_INFO {
                return Err(self.malformed(format!("a value info of {info_len} bytes")));
            }
            let mut bytes = vec![0u8; info_len as usize];
            self.read_exact(&mut bytes)?;
            let info = ValueInfoProto::decode(&bytes[..])
                .map_err(|e| self.malformed(format!("value info: {e}")))?;
            list.push(tensor_signature(info));
        }
        if self.pos != end {
            return Err(self.malformed("a field runs past the end of the graph".into()));
        }
        Ok(signature)
    }

    fn malformed(&self, problem: String) -> WalkError {
        WalkError::Malformed(format!("{problem} (at byte {})", self.pos))
    }

    /// The end offset of a field of `len` bytes starting here, if it fits before `limit`.
    fn checked_end(&self, len: u64, limit: u64) -> Result<u64, WalkError> {
        match self.pos.checked_add(len) {
            Some(end) if end <= limit => Ok(end),
            _ => Err(self.malformed(format!("a field of {len} bytes runs past its parent"))),
        }
    }

    /// A field key: (field number, wire type).
    fn key(&mut self) -> Result<(u64, Wire), WalkError> {
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint,
            1 => Wire::Fixed64,
            2 => Wire::Bytes,
            5 => Wire::Fixed32,
            other => return Err(self.malformed(format!("unsupported wire type {other}"))),
        };
        Ok((key >> 3, wire))
    }

    /// Skips the value of a field of type `wire` that must end by `limit`.
    fn skip(&mut self, wire: Wire, limit: u64) -> Result<(), WalkError> {
        let len = match wire {
            Wire::Varint => {
                self.varint()?;
                return Ok(());
            }
            Wire::Fixed64 => 8,
            Wire::Fixed32 => 4,
            Wire::Bytes => self.varint()?,
        };
        let end = self.checked_end(len, limit)?;
        let offset =
            i64::try_from(len).map_err(|_| self.malformed(format!("a field of {len} bytes")))?;
        self.reader.seek_relative(offset)?;
        self.pos = end;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64, WalkError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let mut byte = [0u8; 1];
            self.read_exact(&mut byte)?;
            value |= u64::from(byte[0] & 0x7f) << shift;
            if byte[0] & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed("a varint longer than 10 bytes".into()))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), WalkError> {
        self.reader.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }
}

fn tensor_signature(info: ValueInfoProto) -> TensorSignature {
    let tensor = info.r#type.and_then(|t| match t.value {
        Some(TypeValue::TensorType(tensor)) => Some(tensor),
        _ => None,
    });
    let elem_type = tensor.as_ref().map(|t| t.elem_type);
    let shape = tensor.and_then(|t| t.shape).map(|shape| {
        shape
            .dim
            .into_iter()
            .map(|d| match d.value {
                Some(DimValue::DimValue(v)) => Dim::Fixed(v),
                Some(DimValue::DimParam(name)) if !name.is_empty() => Dim::Symbolic(name),
                _ => Dim::Unknown,
            })
            .collect()
    });
    TensorSignature {
        name: info.name,
        elem_type,
        shape,
    }
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(v) => write!(f, "{v}"),
            Dim::Symbolic(name) => write!(f, "{name}"),
            Dim::Unknown => write!(f, "?"),
        }
    }
}

/// A shape as `(N,3,64,64)`.
pub fn format_shape(shape: &[Dim]) -> String {
    let dims: Vec<String> = shape.iter().map(Dim::to_string).collect();
    format!("({})", dims.join(","))
}
