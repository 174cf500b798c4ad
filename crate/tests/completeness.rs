//! Completeness: an op or a layer kind cannot be half added. docs/adding-an-op.md walks
//! through every place a new op or layer kind touches; these tests fail when one is
//! missed:
//! - every `Backend` op is checked against PyTorch (tests/pytorch_fixtures.rs, on the CPU
//!   and the GPU) and the GPU against the CPU (tests/gpu_parity.rs);
//! - every op family section of the trait has its CPU file, its GPU file, its WGSL file and
//!   its entry in the GPU's shader table, all under the family's one name;
//! - every layer kind of the spec is in the Rust-owned kind table (spec/kinds.rs tests that
//!   direction), validates, builds on the CPU and exports to PyTorch;
//! - every path docs/adding-an-op.md names exists, so the guide stays true to the code;
//! - no two top-level modules of crate/src import each other, and the GPU backend imports
//!   nothing from the CPU backend.
//!
//! Native only: the sources are read from the file system.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cnn_playground::backend::cpu::CpuBackend;
use cnn_playground::backend::gpu::SHADER_FAMILIES;
use cnn_playground::data::Rng;
use cnn_playground::nn::export::model_py;
use cnn_playground::nn::Model;
use cnn_playground::spec::kinds;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The body of `pub trait Backend { ... }` in backend/mod.rs.
fn backend_trait() -> String {
    let src = read("crate/src/backend/mod.rs");
    let start = src
        .find("pub trait Backend {")
        .expect("backend/mod.rs declares `pub trait Backend`");
    let body = &src[start..];
    let end = body.find("\n}\n").expect("the Backend trait ends with a `}` line");
    body[..end].to_string()
}

/// (family section, method names) in the trait's order; a section starts at a
/// `// ---- family: what ----` or `// ---- family ----` comment.
fn trait_sections() -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in backend_trait().lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("// ----") {
            let title = rest.trim_matches(|c: char| c == '-' || c.is_whitespace());
            let family = title.split(':').next().unwrap_or(title).trim().to_string();
            sections.push((family, Vec::new()));
        } else if let Some(rest) = line.strip_prefix("fn ") {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if sections.is_empty() {
                // `fn name` comes before the first section
                sections.push(("name".to_string(), Vec::new()));
            }
            if let Some(section) = sections.last_mut() {
                section.1.push(name);
            }
        }
    }
    sections
}

/// `fn name` and the data movement section: every test exercises them, and no fixture or
/// shader family belongs to them.
const NOT_A_FAMILY: &[&str] = &["name", "data movement"];

#[test]
fn the_trait_is_read_as_expected() {
    let sections = trait_sections();
    let families: Vec<&str> = sections.iter().map(|(f, _)| f.as_str()).collect();
    assert!(
        families.contains(&"conv2d") && families.contains(&"batch_norm"),
        "{families:?}"
    );
    let methods: usize = sections.iter().map(|(_, m)| m.len()).sum();
    assert!(methods > 40, "only {methods} Backend methods found: {sections:?}");
}

#[test]
fn every_backend_op_has_a_pytorch_fixture_and_gpu_parity() {
    let fixtures = read("crate/tests/pytorch_fixtures.rs");
    let parity = read("crate/tests/gpu_parity.rs");
    assert!(
        fixtures.contains("GpuBackend::request"),
        "the PyTorch fixtures must run on the GPU backend too"
    );
    let mut missing = Vec::new();
    for (family, methods) in trait_sections() {
        if NOT_A_FAMILY.contains(&family.as_str()) {
            continue;
        }
        for m in methods {
            let call = format!(".{m}(");
            if !fixtures.contains(&call) {
                missing.push(format!(
                    "{m} ({family}): no PyTorch fixture case in tests/pytorch_fixtures.rs"
                ));
            }
            if !parity.contains(&call) {
                missing.push(format!("{m} ({family}): no GPU-vs-CPU case in tests/gpu_parity.rs"));
            }
        }
    }
    assert!(missing.is_empty(), "see docs/adding-an-op.md:\n{}", missing.join("\n"));
}

#[test]
fn every_op_family_has_its_files_and_shader_table_entry_under_one_name() {
    let table: BTreeSet<&str> = SHADER_FAMILIES.iter().map(|f| f.name).collect();
    let mut missing = Vec::new();
    let mut families = BTreeSet::new();
    for (family, _) in trait_sections() {
        if NOT_A_FAMILY.contains(&family.as_str()) {
            continue;
        }
        for file in [
            format!("crate/src/backend/cpu/{family}.rs"),
            format!("crate/src/backend/gpu/{family}.rs"),
            format!("shaders/{family}.wgsl"),
        ] {
            if !root().join(&file).is_file() {
                missing.push(format!("family {family}: {file} is missing"));
            }
        }
        if !table.contains(family.as_str()) {
            missing.push(format!("family {family}: not in SHADER_FAMILIES (gpu/mod.rs)"));
        }
        families.insert(family);
    }
    for name in &table {
        if !families.contains(*name) {
            missing.push(format!(
                "shader family {name} has no `// ---- {name} ----` section in the Backend trait"
            ));
        }
    }
    assert!(missing.is_empty(), "see docs/adding-an-op.md:\n{}", missing.join("\n"));
}

#[test]
fn every_layer_kind_builds_and_exports_to_pytorch() {
    let mut problems = Vec::new();
    for kind in kinds::table() {
        let spec = match kinds::example_spec(kind.kind) {
            Ok(spec) => spec,
            Err(e) => {
                problems.push(format!("{}: example spec: {e}", kind.kind));
                continue;
            }
        };
        if let Err(e) = spec.validate() {
            problems.push(format!("{}: does not validate: {e}", kind.kind));
            continue;
        }
        if let Err(e) = Model::build(&spec, &CpuBackend::new(), &mut Rng::new(0)) {
            problems.push(format!("{}: does not build: {e}", kind.kind));
            continue;
        }
        match model_py(&spec) {
            // the layer under test is the third from the end, named by its index
            Ok(py) => {
                let index = spec.layers.len() - 3;
                let defined = py.contains(&format!("self.add_module(\"{index}\""));
                if !defined {
                    problems.push(format!("{}: model.py defines no module \"{index}\" for it", kind.kind));
                }
            }
            Err(e) => problems.push(format!("{}: export to PyTorch failed: {e}", kind.kind)),
        }
    }
    assert!(
        problems.is_empty(),
        "see docs/adding-an-op.md:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_path_the_guide_names_exists() {
    let guide = read("docs/adding-an-op.md");
    let mut named = 0;
    let mut missing = Vec::new();
    for (i, chunk) in guide.split('`').enumerate() {
        // odd chunks are inside backticks; keep those that look like repository paths
        let is_path = i % 2 == 1
            && !chunk.contains(' ')
            && !chunk.contains('<')
            && !chunk.contains('*')
            && ["crate/", "shaders/", "web/", "tests/", "docs/", "presets/", "scripts/"]
                .iter()
                .any(|p| chunk.starts_with(p));
        if !is_path {
            continue;
        }
        named += 1;
        let path = chunk.split(':').next().unwrap_or(chunk).trim_end_matches('/');
        if !root().join(path).exists() {
            missing.push(path.to_string());
        }
    }
    assert!(named > 20, "docs/adding-an-op.md names only {named} paths");
    assert!(
        missing.is_empty(),
        "docs/adding-an-op.md names paths that do not exist: {missing:?}"
    );
}

/// Every `.rs` file below `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())) {
        let path = entry.expect("readable directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The library code of a source file: comment lines and a trailing `#[cfg(test)]` module
/// left out (tests may reach across modules).
fn library_code(text: &str) -> String {
    let code = match text.find("\n#[cfg(test)]\nmod tests") {
        Some(end) => &text[..end],
        None => text,
    };
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file's library code names as `crate::<module>`.
fn crate_modules_named(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn no_two_modules_import_each_other_and_gpu_needs_nothing_from_cpu() {
    let src = root().join("crate/src");
    let mut edges = BTreeSet::new();
    for file in rust_files(&src) {
        let rel = file
            .strip_prefix(&src)
            .expect("below crate/src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with("bin/") || rel == "lib.rs" {
            continue; // the CLI and the module list use everything
        }
        let module = rel
            .split('/')
            .next()
            .unwrap_or(&rel)
            .trim_end_matches(".rs")
            .to_string();
        let code = library_code(&read(&format!("crate/src/{rel}")));
        if rel.starts_with("backend/gpu/") {
            assert!(!code.contains("backend::cpu"), "{rel} imports from the CPU backend");
        }
        for used in crate_modules_named(&code) {
            if used != module {
                edges.insert((module.clone(), used));
            }
        }
    }
    assert!(edges.len() > 10, "too few module imports found: {edges:?}");
    let cycles: Vec<String> = edges
        .iter()
        .filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone())))
        .map(|(a, b)| format!("{a} <-> {b}"))
        .collect();
    assert!(cycles.is_empty(), "modules that import each other: {cycles:?}");
}
