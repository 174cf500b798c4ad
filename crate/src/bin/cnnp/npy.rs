//! float32 arrays in NumPy's .npy format (through `npyz`): what `cnnp infer` reads and
//! writes. Every error names the file.

use std::path::Path;

use cnn_playground::{Error, Result};
use npyz::{DType, NpyFile, Order, TypeChar, WriterBuilder};

/// A row-major (C order) float32 array.
#[derive(Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

fn err(path: &Path, problem: impl std::fmt::Display) -> Error {
    Error::Data(format!("{}: {problem}", path.display()))
}

/// Reads a float32 array in C order (either byte order; format versions 1 to 3).
pub fn read_f32(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_f32(&bytes).map_err(|problem| err(path, problem))
}

fn parse_f32(bytes: &[u8]) -> std::result::Result<Array, String> {
    let file = NpyFile::new(bytes).map_err(|e| format!("not a readable .npy file ({e})"))?;
    let dtype = file.dtype();
    let is_f32 = matches!(&dtype, DType::Plain(t) if t.type_char() == TypeChar::Float && t.size_field() == 4);
    if !is_f32 {
        return Err(format!(
            "dtype must be float32, the file has {} (use x.astype(np.float32))",
            dtype.descr()
        ));
    }
    if file.order() == Order::Fortran && file.shape().len() > 1 {
        return Err("must be in C order, the file is in Fortran order (use np.ascontiguousarray(x))".into());
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let data = file
        .into_vec::<f32>()
        .map_err(|e| format!("cannot read the values of shape {shape:?} ({e})"))?;
    Ok(Array { shape, data })
}

/// Writes a little-endian float32 array in C order.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let bytes = encode_f32(shape, data).map_err(|e| err(path, e))?;
    std::fs::write(path, bytes).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn encode_f32(shape: &[usize], data: &[f32]) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&dims)
        .writer(&mut bytes)
        .begin_nd()?;
    writer.extend(data.iter().copied())?;
    writer.finish()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .npy file written by hand from the format's description: magic, version, header
    /// length (u16 in v1, u32 in v2), a Python dict padded with spaces to a multiple of 64
    /// bytes and ended by a newline, then the raw values.
    fn by_hand(version: u8, descr: &str, fortran: bool, shape: &str, values: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
        let prefix = if version == 1 { 10 } else { 12 };
        while (prefix + dict.len() + 1) % 64 != 0 {
            dict.push(' ');
        }
        dict.push('\n');
        let mut bytes = b"\x93NUMPY".to_vec();
        bytes.extend([version, 0]);
        if version == 1 {
            bytes.extend((dict.len() as u16).to_le_bytes());
        } else {
            bytes.extend((dict.len() as u32).to_le_bytes());
        }
        bytes.extend(dict.as_bytes());
        bytes.extend(values);
        bytes
    }

    fn le(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn reads_version_1_and_2_files_in_either_byte_order() {
        let values = [1.5f32, -2.0, 0.25, 8.0, 3.0, -0.5];
        let want = Array {
            shape: vec![1, 2, 3],
            data: values.to_vec(),
        };
        assert_eq!(
            parse_f32(&by_hand(1, "<f4", false, "(1, 2, 3)", &le(&values))).unwrap(),
            want
        );
        assert_eq!(
            parse_f32(&by_hand(2, "<f4", false, "(1, 2, 3)", &le(&values))).unwrap(),
            want
        );
        let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(parse_f32(&by_hand(1, ">f4", false, "(1, 2, 3)", &be)).unwrap(), want);
    }

    #[test]
    fn writes_version_1_little_endian_c_order() {
        let values = [1.0f32, 2.0, -3.0, 4.5];
        let bytes = encode_f32(&[2, 2], &values).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0, "data starts on a 64-byte boundary");
        let dict = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        for part in ["'descr': '<f4'", "'fortran_order': False", "'shape': (2, 2"] {
            assert!(dict.contains(part), "{dict}");
        }
        assert_eq!(&bytes[10 + header_len..], le(&values).as_slice());
        assert_eq!(
            parse_f32(&bytes).unwrap(),
            Array {
                shape: vec![2, 2],
                data: values.to_vec()
            }
        );
    }

    #[test]
    fn wrong_dtype_order_or_content_is_refused_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("cnnp-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            (
                by_hand(1, "<f8", false, "(2,)", &[0; 16]),
                "dtype must be float32, the file has '<f8'",
            ),
            (
                by_hand(1, "<i4", false, "(2,)", &[0; 8]),
                "dtype must be float32, the file has '<i4'",
            ),
            (by_hand(1, "<f4", true, "(2, 2)", &[0; 16]), "must be in C order"),
            (
                by_hand(1, "<f4", false, "(2, 2)", &[0; 8]),
                "cannot read the values of shape [2, 2]",
            ),
            (b"PK\x03\x04 a zip, not an npy".to_vec(), "not a readable .npy file"),
        ];
        for (i, (bytes, want)) in cases.into_iter().enumerate() {
            let path = dir.join(format!("case{i}.npy"));
            std::fs::write(&path, bytes).unwrap();
            let e = read_f32(&path).unwrap_err().to_string();
            assert!(e.contains(&format!("case{i}.npy: {want}")), "{e}");
        }
        let e = read_f32(&dir.join("absent.npy")).unwrap_err().to_string();
        assert!(e.starts_with("io: ") && e.contains("absent.npy"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
