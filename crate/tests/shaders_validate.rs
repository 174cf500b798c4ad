//! Every WGSL file in shaders/ parses and validates with naga (the WGSL front end wgpu
//! itself uses), so shader errors show up in CI without a GPU. The shader families come
//! from the GPU backend's own table (`SHADER_FAMILIES`, which warm-up builds from), and
//! every file on disk must be in it. Also checks the house naming rule: entry points are
//! `family_variant`, where `family` is the file stem.

#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use cnn_playground::backend::gpu::SHADER_FAMILIES;

fn shader_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shaders")
}

fn wgsl_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shader_dir())
        .expect("shaders/ exists next to crate/")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    files.sort();
    files
}

/// Parses and validates one file; returns its entry point names or a readable report.
fn validate(path: &Path) -> Result<Vec<String>, String> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let module = naga::front::wgsl::parse_str(&source).map_err(|e| e.emit_to_string_with_path(&source, &name))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string_with_path(&source, &name))?;
    Ok(module.entry_points.iter().map(|ep| ep.name.clone()).collect())
}

#[test]
fn every_shader_parses_and_validates() {
    let files = wgsl_files();
    let failures: Vec<String> = files.iter().filter_map(|f| validate(f).err()).collect();
    assert!(failures.is_empty(), "invalid WGSL:\n{}", failures.join("\n"));
}

#[test]
fn the_op_families_all_have_a_shader_file() {
    let names: Vec<String> = wgsl_files()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    for family in SHADER_FAMILIES.iter().map(|f| f.name) {
        assert!(names.iter().any(|n| n == family), "shaders/{family}.wgsl is missing");
    }
    for name in &names {
        assert!(
            SHADER_FAMILIES.iter().any(|f| f.name == name),
            "shaders/{name}.wgsl is in no family of backend::gpu::SHADER_FAMILIES"
        );
    }
}

#[test]
fn the_table_holds_each_file_and_its_kernels_exist() {
    for family in SHADER_FAMILIES {
        let path = shader_dir().join(format!("{}.wgsl", family.name));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            family.source,
            on_disk,
            "{}: the table's source is not the file",
            path.display()
        );
        let entries = validate(&path).unwrap_or_else(|e| panic!("{e}"));
        for entry in family.entry_points() {
            assert!(
                entries.iter().any(|e| e == entry),
                "{}: kernel `{entry}` is not an entry point of the shader",
                path.display()
            );
        }
    }
}

#[test]
fn entry_points_are_named_family_variant() {
    for path in wgsl_files() {
        let Ok(entries) = validate(&path) else {
            continue;
        }; // reported by the test above
        let family = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(!entries.is_empty(), "{} has no entry points", path.display());
        for entry in entries {
            assert!(
                entry.starts_with(&format!("{family}_")),
                "{}: entry point `{entry}` should start with `{family}_`",
                path.display()
            );
        }
    }
}
