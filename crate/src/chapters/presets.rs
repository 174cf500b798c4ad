//! Every preset (presets/<name>.json) compiled in, by name: the chapters' runs name them, and
//! a test keeps this list equal to the folder.

use crate::error::{Error, Result};
use crate::spec::{ModelSpec, ValidSpec};

/// (name, JSON) of every file in presets/, sorted by name.
pub const PRESETS: [(&str, &str); 23] = [
    ("clutter-detect", include_str!("../../../presets/clutter-detect.json")),
    ("digits-pretrain", include_str!("../../../presets/digits-pretrain.json")),
    ("digits-transfer", include_str!("../../../presets/digits-transfer.json")),
    ("mnist-dropout", include_str!("../../../presets/mnist-dropout.json")),
    ("mnist-inception", include_str!("../../../presets/mnist-inception.json")),
    (
        "mnist-inception-naive",
        include_str!("../../../presets/mnist-inception-naive.json"),
    ),
    ("mnist-mlp", include_str!("../../../presets/mnist-mlp.json")),
    ("mnist-nin", include_str!("../../../presets/mnist-nin.json")),
    ("mnist-small", include_str!("../../../presets/mnist-small.json")),
    ("mnist-small-bn", include_str!("../../../presets/mnist-small-bn.json")),
    ("mnist-tiny", include_str!("../../../presets/mnist-tiny.json")),
    (
        "segment-small-resize",
        include_str!("../../../presets/segment-small-resize.json"),
    ),
    (
        "segment-small-transposed",
        include_str!("../../../presets/segment-small-transposed.json"),
    ),
    (
        "segment-small-transposed-k4",
        include_str!("../../../presets/segment-small-transposed-k4.json"),
    ),
    (
        "segment-small-unpool",
        include_str!("../../../presets/segment-small-unpool.json"),
    ),
    ("shapes-detect", include_str!("../../../presets/shapes-detect.json")),
    ("shapes-localize", include_str!("../../../presets/shapes-localize.json")),
    (
        "shapes-segment-resize",
        include_str!("../../../presets/shapes-segment-resize.json"),
    ),
    (
        "shapes-segment-resize-unet",
        include_str!("../../../presets/shapes-segment-resize-unet.json"),
    ),
    (
        "shapes-segment-transposed",
        include_str!("../../../presets/shapes-segment-transposed.json"),
    ),
    (
        "shapes-segment-transposed-unet",
        include_str!("../../../presets/shapes-segment-transposed-unet.json"),
    ),
    (
        "shapes-segment-unpool",
        include_str!("../../../presets/shapes-segment-unpool.json"),
    ),
    (
        "shapes-segment-unpool-unet",
        include_str!("../../../presets/shapes-segment-unpool-unet.json"),
    ),
];

/// The names of every preset.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|(name, _)| *name).collect()
}

/// The JSON text of a preset, or an error naming it and the known ones.
pub fn text(name: &str) -> Result<&'static str> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| Error::Config {
            field: "preset",
            problem: format!("no preset {name:?}; the presets are {}", names().join(", ")),
        })
}

/// A preset's spec, validated.
pub fn valid(name: &str) -> Result<ValidSpec> {
    let spec = ModelSpec::from_json(text(name)?).map_err(|e| Error::Config {
        field: "preset",
        problem: format!("presets/{name}.json: {e}"),
    })?;
    ValidSpec::new(spec).map_err(|e| Error::Config {
        field: "preset",
        problem: format!("presets/{name}.json: {e}"),
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_presets_is_registered_and_validates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../presets");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|f| f.strip_suffix(".json").map(str::to_string))
            .collect();
        files.sort();
        assert_eq!(files, names(), "presets/ and PRESETS differ: register new presets here");
        for (name, text) in PRESETS {
            let on_disk = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
            assert_eq!(on_disk, text);
            valid(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn an_unknown_preset_names_the_known_ones() {
        let e = valid("mnist-giant").unwrap_err().to_string();
        assert!(
            e.contains("no preset \"mnist-giant\"") && e.contains("mnist-small"),
            "{e}"
        );
    }
}
