//! A minimal `.npy` writer (format 1.0, little-endian f32, C order), for reference data that
//! Python tools read with `numpy.load` (`tools/check_onnx.py`).

use std::path::Path;

use super::graph::file::write_atomic;

/// The `.npy` bytes of an f32 array of shape `dims`.
pub fn npy_bytes(dims: &[usize], data: &[f32]) -> Vec<u8> {
    let shape = match dims {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for x in data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Writes an f32 array of shape `dims` as `.npy` (atomically).
pub fn write_npy(path: &Path, dims: &[usize], data: &[f32]) -> std::io::Result<()> {
    write_atomic(path, &npy_bytes(dims, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_describes_the_array() {
        let b = npy_bytes(&[2, 3], &[0.0; 6]);
        let header_len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + header_len]).unwrap();
        assert!(
            header.contains("'shape': (2, 3)") && header.ends_with('\n'),
            "{header}"
        );
        assert_eq!(b.len(), 10 + header_len + 24);
        let one = npy_bytes(&[4], &[1.5; 4]);
        let header_len = u16::from_le_bytes([one[8], one[9]]) as usize;
        assert!(std::str::from_utf8(&one[10..10 + header_len])
            .unwrap()
            .contains("(4,)"));
        assert_eq!(
            &one[10 + header_len..14 + header_len],
            &1.5f32.to_le_bytes()
        );
    }
}
