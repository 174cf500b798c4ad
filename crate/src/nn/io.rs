//! Weights as safetensors, with PyTorch's names and layouts, so that a file written here
//! loads into the exported `model.py` with `load_state_dict(strict=True)` and back.
//!
//! A file holds every parameter and buffer of a `ParamStore` as little-endian F32 under
//! its state-dict name (`"0.weight"`, `"conv1.bias"`, `"3.running_mean"`), plus, for each
//! batch-norm layer (a buffer named `{layer}.running_mean`), PyTorch's
//! `{layer}.num_batches_tracked` as an int64 scalar. Loading checks every engine tensor
//! before changing any: all present, F32, the same shape, nothing else in the file
//! (`num_batches_tracked` excepted, which the engine does not keep).

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::ParamStore;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::{Shape, Tensor};

const BATCHES_TRACKED: &str = ".num_batches_tracked";

/// Serialises every parameter and buffer of `store` (read back from `backend`).
pub async fn save_safetensors(store: &ParamStore, backend: &dyn Backend) -> Result<Vec<u8>> {
    backend.flush()?;
    // name -> (dtype, shape, little-endian bytes); a BTreeMap keeps the header sorted
    let mut tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
    let named = store
        .params
        .iter()
        .map(|p| (&p.name, &p.value))
        .chain(store.buffers.iter().map(|b| (&b.name, &b.value)));
    for (name, value) in named {
        let bytes = backend
            .read(value)
            .await?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        tensors.insert(name.clone(), (Dtype::F32, value.dims().to_vec(), bytes));
    }
    // The store keeps no count of batches seen; PyTorch's counter only matters for
    // momentum=None (cumulative averages), which specs cannot ask for.
    for b in &store.buffers {
        if let Some(layer) = b.name.strip_suffix(".running_mean") {
            let count: i64 = 0;
            tensors.insert(
                format!("{layer}{BATCHES_TRACKED}"),
                (Dtype::I64, vec![], count.to_le_bytes().to_vec()),
            );
        }
    }
    let mut views = Vec::with_capacity(tensors.len());
    for (name, (dtype, shape, bytes)) in &tensors {
        let view = TensorView::new(*dtype, shape.clone(), bytes)
            .map_err(|e| Error::Weights(format!("cannot write {name} {shape:?}: {e}")))?;
        views.push((name.as_str(), view));
    }
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Weights(format!("cannot serialise: {e}")))
}

/// Replaces the values of every parameter and buffer of `store` with the file's (uploaded
/// to `backend`). Nothing changes unless the whole file fits: every problem is listed.
pub fn load_safetensors(bytes: &[u8], store: &mut ParamStore, backend: &dyn Backend) -> Result<()> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Weights(format!("not a readable safetensors file ({e})")))?;
    let mut problems = Vec::new();
    let mut values: Vec<Vec<f32>> = Vec::new();
    let wanted: Vec<(&str, &[usize])> = store
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.value.dims()))
        .chain(store.buffers.iter().map(|b| (b.name.as_str(), b.value.dims())))
        .collect();
    for &(name, dims) in &wanted {
        let view = match file.tensor(name) {
            Ok(view) => view,
            Err(_) => {
                problems.push(format!("{name} {dims:?} is missing"));
                continue;
            }
        };
        if view.dtype() != Dtype::F32 {
            problems.push(format!("{name} must be F32, the file has {}", view.dtype()));
        } else if view.shape() != dims {
            problems.push(format!(
                "{name} must have shape {dims:?}, the file has {:?}",
                view.shape()
            ));
        } else {
            let data = view.data().chunks_exact(4);
            values.push(data.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
        }
    }
    let mut extra: Vec<&str> = file
        .names()
        .into_iter()
        .filter(|n| !n.ends_with(BATCHES_TRACKED) && !wanted.iter().any(|(w, _)| w == n))
        .collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        problems.push(format!("the model has no tensors named {}", extra.join(", ")));
    }
    if !problems.is_empty() {
        return Err(Error::Weights(format!(
            "the file does not fit the model: {}",
            problems.join("; ")
        )));
    }
    let uploaded = wanted
        .iter()
        .zip(&values)
        .map(|((_, dims), v)| backend.upload(Shape::new(dims), v))
        .collect::<Result<Vec<Tensor>>>()?;
    let slots = store
        .params
        .iter_mut()
        .map(|p| &mut p.value)
        .chain(store.buffers.iter_mut().map(|b| &mut b.value));
    for (slot, value) in slots.zip(uploaded) {
        *slot = value;
    }
    Ok(())
}

/// Transfer learning: loads the tensors of `bytes` whose name is accepted by `want` and
/// whose name and shape match a parameter or buffer of the store; returns the names loaded
/// and the store's names that were not (absent, other shape, or not wanted). Fails, with
/// nothing changed, when the file is unreadable or nothing at all matches.
pub fn load_matching(
    bytes: &[u8],
    store: &mut ParamStore,
    backend: &dyn Backend,
    want: impl Fn(&str) -> bool,
) -> Result<(Vec<String>, Vec<String>)> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Weights(format!("not a readable safetensors file ({e})")))?;
    let (mut loaded, mut skipped) = (Vec::new(), Vec::new());
    let mut updates: Vec<(usize, Tensor)> = Vec::new();
    let slots = store
        .params
        .iter()
        .map(|p| (&p.name, p.value.dims()))
        .chain(store.buffers.iter().map(|b| (&b.name, b.value.dims())));
    for (i, (name, dims)) in slots.enumerate() {
        let fits = want(name)
            .then(|| file.tensor(name).ok())
            .flatten()
            .filter(|v| v.dtype() == Dtype::F32 && v.shape() == dims);
        match fits {
            Some(view) => {
                let data = view.data().chunks_exact(4);
                let values: Vec<f32> = data.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                updates.push((i, backend.upload(Shape::new(dims), &values)?));
                loaded.push(name.clone());
            }
            None => skipped.push(name.clone()),
        }
    }
    if loaded.is_empty() {
        return Err(Error::Weights(format!(
            "no tensor of the file fits this model (it has {}; the model wants {})",
            file.names().len(),
            skipped.join(", ")
        )));
    }
    let n_params = store.params.len();
    for (i, t) in updates {
        if i < n_params {
            store.params[i].value = t;
        } else {
            store.buffers[i - n_params].value = t;
        }
    }
    Ok((loaded, skipped))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::nn::ParamKind;

    fn store(be: &CpuBackend, scale: f32) -> ParamStore {
        let mut s = ParamStore::default();
        let w: Vec<f32> = (0..24).map(|i| scale * (i as f32 - 7.5)).collect();
        s.add(
            "conv1.weight".into(),
            ParamKind::ConvWeight,
            be.upload(Shape::new(&[2, 3, 2, 2]), &w).unwrap(),
        );
        s.add(
            "conv1.bias".into(),
            ParamKind::Bias,
            be.upload(Shape::new(&[2]), &[scale, -scale]).unwrap(),
        );
        let mean = be.upload(Shape::new(&[2]), &[0.5 * scale, 1.5]).unwrap();
        s.add_buffer("1.running_mean".into(), mean);
        s.add_buffer(
            "1.running_var".into(),
            be.upload(Shape::new(&[2]), &[2.0, scale]).unwrap(),
        );
        s
    }

    fn values(s: &ParamStore) -> Vec<Vec<f32>> {
        let p = s.params.iter().map(|p| &p.value);
        p.chain(s.buffers.iter().map(|b| &b.value))
            .map(|t| t.cpu().unwrap().to_vec())
            .collect()
    }

    fn save(s: &ParamStore) -> Vec<u8> {
        pollster::block_on(save_safetensors(s, &CpuBackend::new())).unwrap()
    }

    /// One tensor of a file written by hand (not by `save_safetensors`).
    type Entry = (String, Dtype, Vec<usize>, Vec<u8>);

    fn entry(name: &str, dtype: Dtype, shape: &[usize], bytes: Vec<u8>) -> Entry {
        (name.to_string(), dtype, shape.to_vec(), bytes)
    }

    fn file(tensors: &[Entry]) -> Vec<u8> {
        let views = tensors
            .iter()
            .map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()));
        safetensors::serialize(views, None).unwrap()
    }

    fn f32s(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
    }

    fn load_err(bytes: &[u8]) -> String {
        let be = CpuBackend::new();
        let mut s = store(&be, 1.0);
        let before = values(&s);
        let e = load_safetensors(bytes, &mut s, &be).unwrap_err().to_string();
        assert_eq!(values(&s), before, "a failed load must change nothing");
        e
    }

    #[test]
    fn round_trip_restores_every_parameter_and_buffer() {
        let be = CpuBackend::new();
        let bytes = save(&store(&be, 0.25));
        let mut target = store(&be, 3.0);
        load_safetensors(&bytes, &mut target, &be).unwrap();
        assert_eq!(values(&target), values(&store(&be, 0.25)));
    }

    #[test]
    fn file_holds_pytorch_names_dtypes_and_layouts() {
        let be = CpuBackend::new();
        let bytes = save(&store(&be, 1.0));
        let f = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = f.names();
        names.sort_unstable();
        let want = [
            "1.num_batches_tracked",
            "1.running_mean",
            "1.running_var",
            "conv1.bias",
            "conv1.weight",
        ];
        assert_eq!(names, want);
        let w = f.tensor("conv1.weight").unwrap();
        assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[2usize, 3, 2, 2][..]));
        // row-major OIHW, little endian: element [0,0,0,1] is the second value
        assert_eq!(&w.data()[4..8], &(-6.5f32).to_le_bytes());
        let t = f.tensor("1.num_batches_tracked").unwrap();
        assert_eq!((t.dtype(), t.shape(), t.data()), (Dtype::I64, &[][..], &[0u8; 8][..]));
    }

    #[test]
    fn missing_tensors_are_named_with_their_shapes() {
        let e = load_err(&file(&[
            entry("conv1.weight", Dtype::F32, &[2, 3, 2, 2], f32s(24)),
            entry("conv1.bias", Dtype::F32, &[2], f32s(2)),
        ]));
        assert!(
            e.contains("1.running_mean [2] is missing; 1.running_var [2] is missing"),
            "{e}"
        );
    }

    #[test]
    fn wrong_shapes_are_named() {
        let e = load_err(&file(&[
            entry("conv1.weight", Dtype::F32, &[2, 3, 4], f32s(24)),
            entry("conv1.bias", Dtype::F32, &[2], f32s(2)),
            entry("1.running_mean", Dtype::F32, &[2], f32s(2)),
            entry("1.running_var", Dtype::F32, &[1, 2], f32s(2)),
        ]));
        assert!(
            e.contains("conv1.weight must have shape [2, 3, 2, 2], the file has [2, 3, 4]"),
            "{e}"
        );
        assert!(
            e.contains("1.running_var must have shape [2], the file has [1, 2]"),
            "{e}"
        );
    }

    #[test]
    fn wrong_dtypes_are_named() {
        let e = load_err(&file(&[
            entry("conv1.weight", Dtype::F64, &[2, 3, 2, 2], vec![0; 24 * 8]),
            entry("conv1.bias", Dtype::F32, &[2], f32s(2)),
            entry("1.running_mean", Dtype::F16, &[2], vec![0; 4]),
            entry("1.running_var", Dtype::F32, &[2], f32s(2)),
        ]));
        assert!(e.contains("conv1.weight must be F32, the file has F64"), "{e}");
        assert!(e.contains("1.running_mean must be F32, the file has F16"), "{e}");
    }

    #[test]
    fn extra_tensors_are_listed_but_num_batches_tracked_is_ignored() {
        let be = CpuBackend::new();
        let good = save(&store(&be, 1.0));
        let mut tensors: Vec<Entry> = SafeTensors::deserialize(&good)
            .unwrap()
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
            .collect();
        tensors.push(entry("fc.weight", Dtype::F32, &[3], f32s(3)));
        tensors.push(entry("9.bias", Dtype::F32, &[1], f32s(1)));
        let e = load_err(&file(&tensors));
        assert!(e.ends_with("the model has no tensors named 9.bias, fc.weight"), "{e}");
        // without the extras it loads, num_batches_tracked (I64) and all
        tensors.truncate(tensors.len() - 2);
        let mut s = store(&be, 5.0);
        load_safetensors(&file(&tensors), &mut s, &be).unwrap();
        assert_eq!(values(&s), values(&store(&be, 1.0)));
    }

    #[test]
    fn corrupt_files_are_refused() {
        let good = save(&store(&CpuBackend::new(), 1.0));
        for bad in [
            &good[..good.len() - 4],
            &good[..5],
            b"not a safetensors file at all".as_slice(),
        ] {
            let e = load_err(bad);
            assert!(e.starts_with("weights: not a readable safetensors file"), "{e}");
        }
    }
}
