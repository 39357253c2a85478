//! Node attribute constructors (`AttributeProto` with its type tag set).

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::AttributeProto;

fn base(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: kind as i32,
        ..AttributeProto::default()
    }
}

/// An integer attribute (`axis`, `keepdims`, `to`, …).
pub fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        i: value,
        ..base(name, AttributeType::Int)
    }
}

/// A list-of-integers attribute (`perm`, `axes`, …).
pub fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: values.to_vec(),
        ..base(name, AttributeType::Ints)
    }
}

/// A float attribute (`epsilon`, …).
pub fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        f: value,
        ..base(name, AttributeType::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_carry_their_type_tag() {
        assert_eq!(int("axis", -1).r#type, AttributeType::Int as i32);
        assert_eq!(ints("perm", &[0, 2, 1]).ints, vec![0, 2, 1]);
        let f = float("epsilon", 1e-5);
        assert_eq!((f.r#type, f.f), (AttributeType::Float as i32, 1e-5));
    }
}
