//! The course chapters as data (docs/chapters.md is the contract): one file per chapter in
//! chapters/<slug>.json, compiled in here, read by the CLI (`cnnp experiment`) and copied
//! for the page by scripts/build.sh. This module holds the file's types, the loader and its
//! validation (`all`, `get`), the presets registry (`presets`), the live-answer template
//! (`template`), and — natively and in the page alike — the experiment runner (`experiment`)
//! with each chapter's finding (`findings`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::probe::PROBES;
use crate::spec::{TrainConfig, ValidSpec};

pub mod experiment;
pub mod findings;
pub mod measure;
pub mod presets;
pub mod template;

pub use experiment::{run_experiment, ExperimentOptions, ExperimentResult, Finding, RunResult};
pub use template::fill;

/// The chapter files in the order of ../shared/CHAPTERS.md (the page's index.json keeps it).
const FILES: [(&str, &str); 6] = [
    ("l1-l2", include_str!("../../../chapters/l1-l2.json")),
    ("batch-norm", include_str!("../../../chapters/batch-norm.json")),
    ("dropout", include_str!("../../../chapters/dropout.json")),
    (
        "network-in-network",
        include_str!("../../../chapters/network-in-network.json"),
    ),
    ("deconvolution", include_str!("../../../chapters/deconvolution.json")),
    ("up-pooling", include_str!("../../../chapters/up-pooling.json")),
];

/// The page's drawings (docs/chapters.md, "Page instruments").
pub const INSTRUMENTS: [&str; 20] = [
    "weight-histogram",
    "zero-share",
    "filter-norms",
    "first-kernels",
    "loss-terms",
    "landscape",
    "activation-percentiles",
    "lr-sweep",
    "dropout-mask",
    "train-vs-val",
    "test-time",
    "mc-dropout",
    "inception-diagram",
    "branch-maps",
    "class-maps",
    "checkerboard",
    "overlap-toy",
    "switches",
    "decoder-stages",
    "val-metrics",
];

/// Controls that are page state fields but not TrainConfig fields.
const PAGE_CONTROLS: [&str; 1] = ["preset"];

/// One chapter file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Chapter {
    pub slug: String,
    pub title: String,
    /// The notes' open question, shown first.
    pub question: String,
    /// What the idea is, what to try, what to look for.
    pub explainer: String,
    pub runs: Vec<RunSpec>,
    /// The ids of the page's run A and run B.
    pub twins: [String; 2],
    /// State-table fields shown first.
    pub controls: Vec<String>,
    /// The page's drawings, in order.
    pub instruments: Vec<String>,
    /// Steps between two probe readings (page and CLI).
    pub probe_every: u64,
    /// The live answer: `{a.label}`, `{a.<probe>.<key>|fmt}`, `{a.val.<metric>|fmt}`.
    pub answer: String,
    pub experiment: ExperimentSpec,
    pub finding: FindingSpec,
}

/// One configuration the experiment trains: a preset and a TrainConfig patch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub id: String,
    pub label: String,
    /// The name of presets/<preset>.json.
    pub preset: String,
    /// TrainConfig fields replaced (the page's state-table names), applied over the defaults.
    #[serde(default = "empty_object")]
    pub config: Value,
    /// The experiment's probes this run reads (default: all of them); e.g. none of an
    /// inception probe on a run without an inception block.
    #[serde(default)]
    pub probes: Option<Vec<String>>,
}

impl RunSpec {
    /// Whether this run reads probe `name`.
    pub fn reads(&self, name: &str) -> bool {
        self.probes.as_ref().is_none_or(|p| p.iter().any(|n| n == name))
    }
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// How the CLI runs the experiment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    pub steps: u64,
    pub quick_steps: u64,
    /// Validation examples of each evaluation (0: all).
    pub eval_examples: usize,
    pub quick_eval_examples: usize,
    /// Probes read at step 0 and every `probe_every` steps, with their options.
    #[serde(default)]
    pub probes: BTreeMap<String, Value>,
    /// Probes read once, after the last step (costly ones: MC dropout's K passes).
    #[serde(default)]
    pub final_probes: BTreeMap<String, Value>,
    /// `final_probes` for `--quick` (default: `final_probes`).
    #[serde(default)]
    pub quick_final_probes: Option<BTreeMap<String, Value>>,
    /// A sweep of one TrainConfig field over the twins (each value trains both).
    #[serde(default)]
    pub sweep: Option<Sweep>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub field: String,
    pub values: Vec<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FindingSpec {
    pub claim: String,
    pub source: String,
}

impl Chapter {
    /// Parses and validates one chapter file's text.
    pub fn parse(text: &str) -> Result<Chapter> {
        let chapter: Chapter = serde_json::from_str(text).map_err(|e| Error::Parse {
            what: "chapter",
            message: e.to_string(),
        })?;
        chapter.validate()?;
        Ok(chapter)
    }

    /// The run with this id.
    pub fn run(&self, id: &str) -> Result<&RunSpec> {
        self.runs.iter().find(|r| r.id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.runs.iter().map(|r| r.id.as_str()).collect();
            self.problem(format!("has no run {id:?}; its runs are {ids:?}"))
        })
    }

    /// The TrainConfig of a run: the defaults with `seed`, then the run's patch.
    pub fn config(&self, run: &RunSpec, base: &TrainConfig) -> Result<TrainConfig> {
        base.merged_with_json(&run.config.to_string())
            .map_err(|e| self.problem(format!("run {:?}: {e}", run.id)))
    }

    /// The validated model spec of a run's preset.
    pub fn spec(&self, run: &RunSpec) -> Result<ValidSpec> {
        presets::valid(&run.preset).map_err(|e| self.problem(format!("run {:?}: {e}", run.id)))
    }

    /// `final_probes`, or their quick variant.
    pub fn final_probes(&self, quick: bool) -> &BTreeMap<String, Value> {
        match (&self.experiment.quick_final_probes, quick) {
            (Some(q), true) => q,
            _ => &self.experiment.final_probes,
        }
    }

    fn problem(&self, problem: String) -> Error {
        Error::Config {
            field: "chapter",
            problem: format!("{:?} {problem}", self.slug),
        }
    }

    /// Everything the CLI and the page rely on: unique run ids, presets that exist and
    /// validate, config patches that apply, twins that name runs, known controls,
    /// instruments and probes, a template that parses, positive step counts.
    pub fn validate(&self) -> Result<()> {
        if self.runs.is_empty() {
            return Err(self.problem("has no runs".into()));
        }
        let base = TrainConfig::default();
        for (i, run) in self.runs.iter().enumerate() {
            if self.runs[..i].iter().any(|r| r.id == run.id) {
                return Err(self.problem(format!("has two runs with id {:?}", run.id)));
            }
            if !run.config.is_object() {
                return Err(self.problem(format!("run {:?}: config must be a JSON object", run.id)));
            }
            self.spec(run)?;
            self.config(run, &base)?;
            let e = &self.experiment;
            for name in run.probes.iter().flatten() {
                if !e.probes.contains_key(name) && !e.final_probes.contains_key(name) {
                    return Err(self.problem(format!(
                        "run {:?} reads probe {name:?}, which the experiment does not list",
                        run.id
                    )));
                }
            }
        }
        for id in &self.twins {
            self.run(id)?;
        }
        let fields: Vec<String> = match serde_json::to_value(&base) {
            Ok(Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for c in &self.controls {
            if !fields.contains(c) && !PAGE_CONTROLS.contains(&c.as_str()) {
                return Err(self.problem(format!(
                    "control {c:?} is not a state field; known: {fields:?} and {PAGE_CONTROLS:?}"
                )));
            }
        }
        for name in &self.instruments {
            if !INSTRUMENTS.contains(&name.as_str()) {
                return Err(self.problem(format!("instrument {name:?} is unknown; known: {INSTRUMENTS:?}")));
            }
        }
        let quick = self.experiment.quick_final_probes.iter().flat_map(|m| m.iter());
        let probes = (self.experiment.probes.iter())
            .chain(&self.experiment.final_probes)
            .chain(quick);
        for (name, options) in probes {
            let Some((_, allowed)) = PROBES.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = PROBES.iter().map(|(n, _)| *n).collect();
                return Err(self.problem(format!("probe {name:?} is unknown; known: {names:?}")));
            };
            let Value::Object(options) = options else {
                return Err(self.problem(format!("probe {name:?}: options must be a JSON object")));
            };
            if let Some(key) = options.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(self.problem(format!(
                    "probe {name:?}: unknown option {key:?}; it accepts {allowed:?}"
                )));
            }
        }
        if let Some(sweep) = &self.experiment.sweep {
            if sweep.values.is_empty() {
                return Err(self.problem("sweep has no values".into()));
            }
            for v in &sweep.values {
                let patch = serde_json::json!({ sweep.field.clone(): v });
                base.merged_with_json(&patch.to_string())
                    .map_err(|e| self.problem(format!("sweep {}={v}: {e}", sweep.field)))?;
            }
        }
        let e = &self.experiment;
        if self.probe_every == 0 || e.steps == 0 || e.quick_steps == 0 {
            return Err(self.problem("needs probe_every, steps and quick_steps above 0".into()));
        }
        template::parse(&self.answer).map_err(|e| self.problem(format!("answer: {e}")))?;
        Ok(())
    }
}

/// Every chapter, in the order of CHAPTERS.md.
pub fn all() -> Result<Vec<Chapter>> {
    FILES
        .iter()
        .map(|(slug, text)| {
            let chapter = Chapter::parse(text).map_err(|e| Error::Config {
                field: "chapter",
                problem: format!("chapters/{slug}.json: {e}"),
            })?;
            if chapter.slug != *slug {
                return Err(Error::Config {
                    field: "chapter",
                    problem: format!("chapters/{slug}.json has slug {:?}", chapter.slug),
                });
            }
            Ok(chapter)
        })
        .collect()
}

/// The slugs of every chapter, in order.
pub fn slugs() -> Vec<&'static str> {
    FILES.iter().map(|(slug, _)| *slug).collect()
}

/// The chapter with this slug, or an error naming it and the known ones.
pub fn get(slug: &str) -> Result<Chapter> {
    let Some((_, text)) = FILES.iter().find(|(s, _)| *s == slug) else {
        return Err(Error::Config {
            field: "chapter",
            problem: format!("no chapter {slug:?}; the chapters are {}", slugs().join(", ")),
        });
    };
    Chapter::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chapter_loads_and_validates_in_the_order_of_chapters_md() {
        let chapters = all().unwrap();
        let got: Vec<&str> = chapters.iter().map(|c| c.slug.as_str()).collect();
        assert_eq!(
            got,
            [
                "l1-l2",
                "batch-norm",
                "dropout",
                "network-in-network",
                "deconvolution",
                "up-pooling"
            ]
        );
        for c in &chapters {
            assert_eq!(get(&c.slug).unwrap(), *c);
        }
    }

    /// scripts/build.sh writes web/chapters/index.json in this order for the page.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_page_build_lists_the_chapters_in_the_same_order() {
        let build = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/build.sh")).unwrap();
        let want = format!("CHAPTER_ORDER=\"{}\"", slugs().join(" "));
        assert!(build.contains(&want), "scripts/build.sh lacks {want}");
    }

    #[test]
    fn an_unknown_slug_names_itself_and_the_known_ones() {
        let e = get("l3").unwrap_err().to_string();
        assert!(e.contains("no chapter \"l3\""), "{e}");
        assert!(e.contains("l1-l2, batch-norm, dropout"), "{e}");
    }

    /// A valid chapter's JSON with one field replaced.
    fn with(field: &str, value: Value) -> String {
        let mut v: Value = serde_json::from_str(FILES[0].1).unwrap();
        v[field] = value;
        v.to_string()
    }

    fn refused(text: &str) -> String {
        Chapter::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let run = |preset: &str, config: Value| serde_json::json!([{"id": "x", "label": "X", "preset": preset, "config": config}]);
        let e = refused(&with("runs", run("mnist-huge", serde_json::json!({}))));
        assert!(e.contains("run \"x\"") && e.contains("no preset \"mnist-huge\""), "{e}");
        let e = refused(&with("runs", run("mnist-small", serde_json::json!({"lr": -1}))));
        assert!(e.contains("run \"x\"") && e.contains("lr must be in (0, 10]"), "{e}");
        let e = refused(&with(
            "runs",
            run("mnist-small", serde_json::json!({"learning_rate": 1})),
        ));
        assert!(e.contains("unknown field `learning_rate`"), "{e}");
        let mut runs = run("mnist-small", serde_json::json!({}));
        runs[0]["probes"] = serde_json::json!(["landscape"]);
        let e = refused(&with("runs", runs));
        assert!(
            e.contains("reads probe \"landscape\", which the experiment does not list"),
            "{e}"
        );
        let e = refused(&with("twins", serde_json::json!(["l1", "l9"])));
        assert!(
            e.contains("has no run \"l9\"") && e.contains(r#"["l1", "l2", "none"]"#),
            "{e}"
        );
        let e = refused(&with("instruments", serde_json::json!(["zero-share", "sparkles"])));
        assert!(e.contains("instrument \"sparkles\" is unknown"), "{e}");
        let e = refused(&with("controls", serde_json::json!(["lr", "colour"])));
        assert!(e.contains("control \"colour\" is not a state field"), "{e}");
        let e = refused(&with("answer", Value::String("{a.kernels.norm|f9}".into())));
        assert!(e.contains("answer") && e.contains("f9"), "{e}");
        let e = refused(&with("title", Value::Null));
        assert!(e.contains("invalid chapter"), "{e}");
        let mut v: Value = serde_json::from_str(FILES[0].1).unwrap();
        v["experiment"]["probes"] = serde_json::json!({"kernelz": {}});
        let e = refused(&v.to_string());
        assert!(e.contains("probe \"kernelz\" is unknown"), "{e}");
        v["experiment"]["probes"] = serde_json::json!({"landscape": {"etaz": [0.1]}});
        let e = refused(&v.to_string());
        assert!(
            e.contains("unknown option \"etaz\"") && e.contains(r#"["etas"]"#),
            "{e}"
        );
        v["experiment"]["probes"] = serde_json::json!({});
        v["surprise"] = Value::Bool(true);
        assert!(refused(&v.to_string()).contains("unknown field `surprise`"));
    }

    #[test]
    fn run_configs_apply_the_patch_over_the_base() {
        let c = get("l1-l2").unwrap();
        let base = TrainConfig {
            seed: 7,
            ..TrainConfig::default()
        };
        let l1 = c.config(c.run("l1").unwrap(), &base).unwrap();
        assert_eq!(l1.seed, 7);
        assert_eq!(l1.l1, 0.002);
        assert_eq!(l1.l1_mode, crate::spec::L1Mode::Proximal);
        assert_eq!(l1.optimizer, crate::spec::OptimizerKind::Sgd);
        assert_eq!(l1.batch, base.batch);
    }
}
