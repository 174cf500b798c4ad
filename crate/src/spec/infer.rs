//! Validation: shape inference over a spec's DAG, producing the `Plan`. It runs in four
//! phases, each collecting every problem it finds rather than stopping at the first:
//!
//! 1. [`ModelSpec::check_model`]: the fields above the layers and the data section;
//! 2. [`ModelSpec::resolve`]: layer names and inputs: each input an earlier layer or the
//!    model input (so the graph is in topological order and has no cycles), arities;
//! 3. [`ModelSpec::infer_shapes`]: each layer's shapes, parameters and FLOPs from its inputs'
//!    (shapes.rs), with the running totals held to the budget;
//! 4. [`ModelSpec::check_outputs`]: every output but the last is read, and the last fits the task.
//!
//! A layer with a problem has no output shape; the layers that read it are skipped rather
//! than blamed. Problems are reported sorted by layer index.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::shapes::infer_layer;
use super::{Budget, LayerSpec, ModelSpec, Task, INPUT};
use crate::error::{Error, Result};

/// Where a layer reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Input,
    Layer(usize),
}

/// What validation learns about one layer (shapes are of one example, no batch axis).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerPlan {
    pub name: String,
    pub kind: &'static str,
    #[serde(skip)]
    pub sources: Vec<Source>,
    /// The names of the inputs (`"input"` for the model input).
    pub inputs: Vec<String>,
    pub in_shapes: Vec<Vec<usize>>,
    pub out: Vec<usize>,
    pub params: usize,
    pub flops: usize,
}

/// What validation learns: every layer's plan, and totals.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct Plan {
    pub layers: Vec<LayerPlan>,
    pub params: usize,
    /// Multiply-adds of one forward pass of one example, times two.
    pub flops: usize,
    /// Activation floats of one example, summed over layers.
    pub activations: usize,
}

impl Plan {
    /// Adds one layer's counts to the totals (saturating: a huge model is refused by the
    /// budget, it must not overflow first).
    fn add_to_totals(&mut self, params: usize, flops: usize, out: &[usize]) {
        self.params = self.params.saturating_add(params);
        self.flops = self.flops.saturating_add(flops);
        self.activations = self.activations.saturating_add(out.iter().product());
    }

    /// The problem once the running totals pass the budget: parameters first, then activations.
    fn budget_problem(&self, budget: &Budget) -> Option<String> {
        if self.params > budget.max_params {
            Some(format!(
                "the model needs {} parameters so far, over the budget of {}",
                self.params, budget.max_params
            ))
        } else if self.activations > budget.max_activations {
            Some(format!(
                "activations reach {} values per example, over the budget of {}",
                self.activations, budget.max_activations
            ))
        } else {
            None
        }
    }
}

/// A spec that passed validation, with the plan validation produced. Only validation makes
/// one, so whoever holds one (model building, the trainer, the page's summary) uses its
/// plan instead of validating again.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSpec {
    spec: ModelSpec,
    plan: Plan,
}

impl ValidSpec {
    /// Validates `spec` within the default budget (as `ModelSpec::validate`) and keeps the plan.
    pub fn new(spec: ModelSpec) -> Result<ValidSpec> {
        let plan = spec.validate()?;
        Ok(ValidSpec { spec, plan })
    }
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    pub fn into_parts(self) -> (ModelSpec, Plan) {
        (self.spec, self.plan)
    }
}

/// One layer's inputs as phase 2 resolved them.
struct Wired {
    /// The names it reads (`"input"` for the model input).
    wanted: Vec<String>,
    /// Where they come from; None when one could not be resolved or the count is wrong
    /// (shape inference then skips the layer).
    sources: Option<Vec<Source>>,
}

/// What phase 2 learns about the graph.
struct Wiring {
    layers: Vec<Wired>,
    /// The first layer with each name (its own, or its index).
    index_of: HashMap<String, usize>,
    /// Whether some later layer reads each layer's output.
    used: Vec<bool>,
}

/// Each layer's output shape (one example), None where it has a problem or reads one.
type Outs = Vec<Option<Vec<usize>>>;

impl ModelSpec {
    /// Infers every layer's shapes within the default budget; refuses anything that cannot run.
    pub fn validate(&self) -> Result<Plan> {
        self.validate_with(&Budget::default())
    }

    /// Like `validate`, reporting every problem at once: one error as itself, several as
    /// `Error::Specs`.
    pub fn validate_with(&self, budget: &Budget) -> Result<Plan> {
        let (plan, mut errors) = self.check(budget);
        match errors.len() {
            0 => Ok(plan),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Specs(errors)),
        }
    }

    /// Shape inference over the whole DAG, collecting every problem (the phases in the
    /// module docs). A layer with a problem has no output shape; the layers that read it
    /// are skipped rather than blamed. The plan is complete only when the list of problems
    /// is empty.
    pub fn check(&self, budget: &Budget) -> (Plan, Vec<Error>) {
        let mut errors = self.check_model();
        if !errors.is_empty() {
            return (Plan::default(), errors);
        }
        let wiring = self.resolve(&mut errors);
        let (plan, outs) = self.infer_shapes(&wiring, budget, &mut errors);
        self.check_outputs(&wiring, &plan, &outs, &mut errors);
        // stable: a layer's problems stay in the order of the phases that found them
        errors.sort_by_key(|e| match e {
            Error::Spec { index, .. } => *index,
            _ => 0,
        });
        (plan, errors)
    }

    /// A problem of layer `index`, with the shapes it read.
    fn layer_error(&self, index: usize, problem: String, input_shapes: &[Vec<usize>]) -> Error {
        let layer = &self.layers[index];
        Error::Spec {
            index,
            name: layer.name.clone(),
            kind: layer.op.kind().into(),
            problem,
            input_shapes: input_shapes.to_vec(),
        }
    }

    /// Phase 1: the fields above the layers (a non-empty input, at least two classes, at
    /// least one layer), then the data section against them. Its problems are the model's,
    /// not a layer's ("input"); the later phases run only when there are none.
    fn check_model(&self) -> Vec<Error> {
        let mut errors = Vec::new();
        let top = |problem: String| Error::Spec {
            index: 0,
            name: None,
            kind: "input".into(),
            problem,
            input_shapes: Vec::new(),
        };
        if self.input.contains(&0) {
            errors.push(top(format!("input shape {:?} has a zero dimension", self.input)));
        }
        if self.classes < 2 {
            errors.push(top(format!("classes must be at least 2, got {}", self.classes)));
        }
        if self.layers.is_empty() {
            errors.push(top("the model has no layers".into()));
        }
        // An explicit data section must fit the model. Without one, a classifier can still be
        // exported or run on any input (training checks it against MNIST, TaskData::new); the
        // other tasks have no default data, which the check names.
        let data = match (&self.data, self.task) {
            (Some(d), _) => Some(d.clone()),
            (None, Task::Classify) => None,
            (None, _) => Some(self.data_config()),
        };
        if let (true, Some(data)) = (errors.is_empty(), data) {
            match data.validate_for(self) {
                Ok(()) => {}
                Err(Error::Config { field, problem }) => errors.push(top(format!("{field}: {problem}"))),
                Err(e @ Error::Spec { .. }) => errors.push(e),
                Err(e) => errors.push(top(e.to_string())),
            }
        }
        errors
    }

    /// Phase 2: names and inputs, in the order of the list. A name must be well formed and
    /// unused; an input must name an earlier layer or the model input, so the list is a
    /// topological order and the graph has no cycles; the layer must read as many inputs
    /// as its op takes.
    fn resolve(&self, errors: &mut Vec<Error>) -> Wiring {
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut used = vec![false; self.layers.len()];
        let mut layers = Vec::with_capacity(self.layers.len());
        for (index, layer) in self.layers.iter().enumerate() {
            let name = self.layer_name(index);
            let mut err = |problem: String| errors.push(self.layer_error(index, problem, &[]));
            if let Some(n) = &layer.name {
                if let Some(problem) = name_problem(n) {
                    err(problem);
                } else if index_of.contains_key(n) {
                    err(format!("the name \"{n}\" is already used by layer {}", index_of[n]));
                }
            }

            // Named inputs must come earlier in the list (so there are no cycles).
            let wanted: Vec<String> = match &layer.inputs {
                Some(list) => list.clone(),
                None if index == 0 => vec![INPUT.into()],
                None => vec![self.layer_name(index - 1)],
            };
            let mut sources = Vec::with_capacity(wanted.len());
            let mut resolved = true;
            for w in &wanted {
                if layer.inputs.is_none() && index > 0 {
                    // the default: the layer before, by position (even if names clash)
                    sources.push(Source::Layer(index - 1));
                    used[index - 1] = true;
                } else if w == INPUT {
                    sources.push(Source::Input);
                } else if let Some(&j) = index_of.get(w) {
                    sources.push(Source::Layer(j));
                    used[j] = true;
                } else if (index..self.layers.len()).any(|j| self.layer_name(j) == *w) {
                    err(format!(
                        "reads \"{w}\", which comes at or after it (a layer may only read earlier layers)"
                    ));
                    resolved = false;
                } else {
                    err(format!("reads \"{w}\", but no layer has that name"));
                    resolved = false;
                }
            }
            index_of.entry(name).or_insert(index);
            let (min, max) = layer.op.arity();
            if resolved && (sources.len() < min || sources.len() > max) {
                let want = if min == max {
                    format!("exactly {min}")
                } else {
                    format!("at least {min}")
                };
                err(format!("takes {want} input(s), got {}", sources.len()));
                resolved = false;
            }
            layers.push(Wired {
                wanted,
                sources: resolved.then_some(sources),
            });
        }
        Wiring { layers, index_of, used }
    }

    /// Phase 3: each resolved layer's shapes, parameters and FLOPs from its inputs' shapes
    /// (shapes.rs), in list order, adding them to the totals; the first layer whose totals
    /// pass the budget is blamed for it. Returns the plan and every layer's output shape.
    fn infer_shapes(&self, wiring: &Wiring, budget: &Budget, errors: &mut Vec<Error>) -> (Plan, Outs) {
        let mut plan = Plan::default();
        let mut outs: Outs = Vec::with_capacity(self.layers.len());
        let mut over_budget = false;
        for (index, (layer, wired)) in self.layers.iter().zip(&wiring.layers).enumerate() {
            let in_shapes: Option<Vec<Vec<usize>>> = wired.sources.as_ref().and_then(|sources| {
                sources
                    .iter()
                    .map(|s| match s {
                        Source::Input => Some(self.input.to_vec()),
                        Source::Layer(j) => outs[*j].clone(),
                    })
                    .collect()
            });
            let (Some(sources), Some(in_shapes)) = (&wired.sources, in_shapes) else {
                outs.push(None);
                continue;
            };

            let pool_of = |pool: &str| -> std::result::Result<(Vec<usize>, Vec<usize>), String> {
                let j = *wiring
                    .index_of
                    .get(pool)
                    .filter(|&&j| j < index)
                    .ok_or_else(|| format!("pool \"{pool}\" is not an earlier layer"))?;
                if !matches!(self.layers[j].op, LayerSpec::MaxPool { .. }) {
                    return Err(format!(
                        "pool \"{pool}\" is a {} layer, not a max_pool",
                        self.layers[j].op.kind()
                    ));
                }
                let p = plan
                    .layers
                    .iter()
                    .find(|p| p.name == pool)
                    .ok_or_else(|| format!("pool \"{pool}\" has no valid shapes"))?;
                Ok((p.in_shapes[0].clone(), p.out.clone()))
            };
            match infer_layer(&layer.op, &in_shapes, pool_of) {
                Ok((out, params, flops)) => {
                    plan.add_to_totals(params, flops, &out);
                    if !over_budget {
                        if let Some(problem) = plan.budget_problem(budget) {
                            over_budget = true;
                            errors.push(self.layer_error(index, problem, &in_shapes));
                        }
                    }
                    outs.push(Some(out.clone()));
                    plan.layers.push(LayerPlan {
                        name: self.layer_name(index),
                        kind: layer.op.kind(),
                        sources: sources.clone(),
                        inputs: wired.wanted.clone(),
                        in_shapes,
                        out,
                        params,
                        flops,
                    });
                }
                Err(problem) => {
                    errors.push(self.layer_error(index, problem, &in_shapes));
                    outs.push(None);
                }
            }
        }
        (plan, outs)
    }

    /// Phase 4: the model's output. Every layer but the last must be read by a later one
    /// (or be a max_unpool's pool); the last layer's shape must be the task's.
    fn check_outputs(&self, wiring: &Wiring, plan: &Plan, outs: &Outs, errors: &mut Vec<Error>) {
        let last = self.layers.len() - 1;
        for (j, u) in wiring.used.iter().enumerate().take(last) {
            if !u
                && !self
                    .layers
                    .iter()
                    .any(|l| matches!(&l.op, LayerSpec::MaxUnpool { pool } if *pool == self.layer_name(j)))
            {
                let problem = "its output is not read by any later layer (the last layer is the model's output)";
                errors.push(self.layer_error(j, problem.into(), &[]));
            }
        }
        if let Some(Some(out)) = outs.last() {
            if let Err(problem) = self.task.check_output(out, self.classes, self.input) {
                let in_shapes = plan.layers.last().map(|p| p.in_shapes.clone()).unwrap_or_default();
                errors.push(self.layer_error(last, problem, &in_shapes));
            }
        }
    }
}

/// The layer editor's view of a spec text: every problem (with its layer index) and the
/// plan of the layers that could be inferred, as JSON. Never fails: bad JSON is a problem too.
pub fn check_json(text: &str) -> String {
    let (plan, errors) = match ModelSpec::parse(text) {
        Ok(spec) => spec.check(&Budget::default()),
        Err(e) => (Plan::default(), vec![e]),
    };
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| {
            let index = match e {
                Error::Spec { index, kind, .. } if kind != "input" => Some(*index),
                _ => None,
            };
            serde_json::json!({ "index": index, "message": e.to_string() })
        })
        .collect();
    serde_json::json!({
        "ok": errors.is_empty(),
        "params": plan.params,
        "flops": plan.flops,
        "activations": plan.activations,
        "layers": plan.layers,
        "errors": errors,
    })
    .to_string()
}

/// A layer name must be a Python identifier (the export writes it as a module name), not
/// the reserved "input", and without dots (PyTorch's parameter names join with dots).
fn name_problem(n: &str) -> Option<String> {
    let mut chars = n.chars();
    let ok_start = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !ok_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some(format!(
            "the name \"{n}\" must start with a letter or _ and hold only letters, digits and _"
        ));
    }
    if n == INPUT {
        return Some("the name \"input\" is reserved for the model input".into());
    }
    None
}
