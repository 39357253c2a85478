//! [`GraphBuilder`]: values, initializers, nodes, inputs and outputs of one ONNX graph, and the
//! `ModelProto` around it.
//!
//! Every value has one name, defined once (graph input, initializer or node output); nodes
//! refer to values only through [`Value`] handles the builder handed out, so a graph built here
//! is well formed by construction. Generated names carry the current scope
//! (`block3/MatMul_17`), which keeps tract's and onnxruntime's messages readable.

use std::collections::HashSet;

use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

use super::data::{ElemType, TensorData};
use super::{GraphError, IR_VERSION, OPSET};

/// A named value of the graph (an edge): a graph input, an initializer or a node output.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Value(String);

impl Value {
    /// The value's name in the graph.
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// One dimension of a graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic size (`dim_param`), e.g. the batch axis `N`.
    Symbol(String),
}

/// Builds one ONNX graph.
#[derive(Debug)]
pub struct GraphBuilder {
    graph: GraphProto,
    defined: HashSet<String>,
    scope: String,
    next_id: usize,
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            graph: GraphProto {
                name: name.to_string(),
                ..GraphProto::default()
            },
            defined: HashSet::new(),
            scope: String::new(),
            next_id: 0,
        }
    }

    /// Sets the prefix of generated node and value names (empty for none).
    pub fn set_scope(&mut self, scope: &str) {
        self.scope = scope.to_string();
    }

    /// Number of nodes so far.
    pub fn node_count(&self) -> usize {
        self.graph.node.len()
    }

    /// Number of initializers so far.
    pub fn initializer_count(&self) -> usize {
        self.graph.initializer.len()
    }

    fn define(&mut self, name: &str) -> Result<Value, GraphError> {
        if !self.defined.insert(name.to_string()) {
            return Err(GraphError::DuplicateName(name.to_string()));
        }
        Ok(Value(name.to_string()))
    }

    fn check(&self, v: &Value) -> Result<(), GraphError> {
        if self.defined.contains(&v.0) {
            Ok(())
        } else {
            Err(GraphError::UnknownValue(v.0.clone()))
        }
    }

    fn fresh_name(&mut self, op: &str) -> String {
        self.next_id += 1;
        if self.scope.is_empty() {
            format!("{op}_{}", self.next_id)
        } else {
            format!("{}/{op}_{}", self.scope, self.next_id)
        }
    }

    /// Declares a graph input of element type `elem` and shape `dims`.
    pub fn input(&mut self, name: &str, elem: ElemType, dims: &[Dim]) -> Result<Value, GraphError> {
        let v = self.define(name)?;
        self.graph.input.push(value_info(name, elem, dims));
        Ok(v)
    }

    /// Declares `value` a graph output of element type `elem` and shape `dims`.
    pub fn output(
        &mut self,
        value: &Value,
        elem: ElemType,
        dims: &[Dim],
    ) -> Result<(), GraphError> {
        self.check(value)?;
        self.graph.output.push(value_info(&value.0, elem, dims));
        Ok(())
    }

    /// Adds an initializer (a constant tensor) called `name`.
    pub fn initializer(&mut self, name: &str, data: TensorData) -> Result<Value, GraphError> {
        if data.len() != data.expected_len() {
            return Err(GraphError::DataLength {
                name: name.to_string(),
                dims: data.dims().to_vec(),
                want: data.expected_len(),
                got: data.len(),
            });
        }
        let v = self.define(name)?;
        self.graph.initializer.push(data.into_proto(name));
        Ok(v)
    }

    /// Adds an initializer with a generated name in the current scope (small constants:
    /// shapes, axes, scalars).
    pub fn constant(&mut self, data: TensorData) -> Result<Value, GraphError> {
        let name = self.fresh_name("const");
        self.initializer(&name, data)
    }

    /// Adds a node with one output, whose name is generated.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&Value],
        attrs: Vec<AttributeProto>,
    ) -> Result<Value, GraphError> {
        let out = self.fresh_name(op);
        self.node_named(op, &out, inputs, attrs)
    }

    /// Adds a node with one output called `output` (e.g. a graph output's name).
    pub fn node_named(
        &mut self,
        op: &str,
        output: &str,
        inputs: &[&Value],
        attrs: Vec<AttributeProto>,
    ) -> Result<Value, GraphError> {
        let mut outs = self.push_node(op, inputs, attrs, &[output.to_string()])?;
        Ok(outs.remove(0))
    }

    /// Adds a node with `outputs` outputs (e.g. `Split`), whose names are generated.
    pub fn node_multi(
        &mut self,
        op: &str,
        inputs: &[&Value],
        attrs: Vec<AttributeProto>,
        outputs: usize,
    ) -> Result<Vec<Value>, GraphError> {
        let base = self.fresh_name(op);
        let names: Vec<String> = (0..outputs).map(|i| format!("{base}.{i}")).collect();
        self.push_node(op, inputs, attrs, &names)
    }

    fn push_node(
        &mut self,
        op: &str,
        inputs: &[&Value],
        attrs: Vec<AttributeProto>,
        outputs: &[String],
    ) -> Result<Vec<Value>, GraphError> {
        for v in inputs {
            self.check(v)?;
        }
        let values = outputs
            .iter()
            .map(|n| self.define(n))
            .collect::<Result<Vec<_>, _>>()?;
        self.graph.node.push(NodeProto {
            name: format!("{}#node", outputs[0]),
            op_type: op.to_string(),
            input: inputs.iter().map(|v| v.0.clone()).collect(),
            output: outputs.to_vec(),
            attribute: attrs,
            ..NodeProto::default()
        });
        Ok(values)
    }

    /// The finished model: this graph, opset [`OPSET`] of the default domain, IR version
    /// [`IR_VERSION`], `doc` as its description.
    pub fn finish(self, doc: &str) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "xrvlm-train".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.to_string(),
            graph: Some(self.graph),
            ..ModelProto::default()
        }
    }
}

fn value_info(name: &str, elem: ElemType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                Dim::Symbol(s) => dimension::Value::DimParam(s.clone()),
            }),
            ..Dimension::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem.onnx(),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::graph::attr;

    #[test]
    fn names_are_unique_and_values_must_exist() {
        let mut g = GraphBuilder::new("g");
        let x = g
            .input(
                "x",
                ElemType::F32,
                &[Dim::Symbol("N".into()), Dim::Fixed(2)],
            )
            .unwrap();
        assert!(matches!(
            g.input("x", ElemType::F32, &[]),
            Err(GraphError::DuplicateName(n)) if n == "x"
        ));
        let foreign = GraphBuilder::new("h")
            .input("y", ElemType::F32, &[])
            .unwrap();
        let err = g.node("Relu", &[&foreign], vec![]).unwrap_err();
        assert!(err.to_string().contains("\"y\""), "{err}");
        let bad = TensorData::f32(&[2, 2], vec![1.0; 3]);
        let err = g.initializer("w", bad).unwrap_err().to_string();
        assert!(
            err.contains("\"w\"") && err.contains('4') && err.contains('3'),
            "{err}"
        );
        g.set_scope("blk");
        let y = g
            .node("Softmax", &[&x], vec![attr::int("axis", -1)])
            .unwrap();
        assert!(y.name().starts_with("blk/Softmax_"), "{}", y.name());
        let parts = g.node_multi("Split", &[&x], vec![], 2).unwrap();
        assert_eq!(parts.len(), 2);
        g.output(&y, ElemType::F32, &[Dim::Symbol("N".into()), Dim::Fixed(2)])
            .unwrap();
        let m = g.finish("doc");
        assert_eq!(m.opset_import[0].version, OPSET);
        let graph = m.graph.unwrap();
        assert_eq!(graph.node.len(), 2);
        assert_eq!(graph.output[0].name, y.name());
    }
}
