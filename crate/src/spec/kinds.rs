//! Every layer kind a spec accepts, as data: what it does and its parameters (type, the
//! default when the key is left out, what a newly added layer gets). The page's layer
//! editor and its architecture toggles are built from this table (through the wasm
//! edge's `layer_kinds`), so a kind added to [`LayerSpec`] reaches the page by adding one
//! entry here; the tests below fail until it has one.
//!
//! The defaults are not written down twice: [`table`] reads each one from serde, by
//! parsing a layer without that key and looking at what the field became.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{LayerSpec, ModelSpec};
use crate::error::{Error, Result};

/// How the layer editor reads a parameter typed as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// A whole number.
    Int,
    /// Any number (1e-5 included).
    Number,
    /// Zero padding: a number of pixels, "same" or "valid".
    Padding,
    /// One of `values`.
    Enum,
    /// The name of another layer.
    Name,
    /// true or false.
    Bool,
}

/// A value a newly added layer gets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Initial {
    Int(u64),
    Number(f64),
    Text(&'static str),
}

/// One parameter of a layer kind, in the order the editor shows them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Param {
    pub key: &'static str,
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// The Rust default when the key is left out, as text (the editor's placeholder);
    /// absent for a required parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// What a newly added layer gets; absent: the key is left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial: Option<Initial>,
    /// The allowed values of an enum parameter.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub values: &'static [&'static str],
}

/// One layer kind: its `type` in a spec, a short description and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Kind {
    pub kind: &'static str,
    pub about: &'static str,
    /// An elementwise activation (the toggles keep it with the conv stage it follows).
    pub activation: bool,
    pub params: Vec<Param>,
}

/// A parameter as written in the table below; `unset` says what leaving it out means when
/// serde's default is not a value (max_pool's stride: the window size).
struct P {
    key: &'static str,
    ty: ParamType,
    initial: Option<Initial>,
    values: &'static [&'static str],
    unset: Option<&'static str>,
}

const fn p(key: &'static str, ty: ParamType) -> P {
    P {
        key,
        ty,
        initial: None,
        values: &[],
        unset: None,
    }
}

impl P {
    const fn initial(mut self, v: Initial) -> P {
        self.initial = Some(v);
        self
    }
    const fn values(mut self, values: &'static [&'static str]) -> P {
        self.values = values;
        self
    }
    const fn unset(mut self, meaning: &'static str) -> P {
        self.unset = Some(meaning);
        self
    }
}

use Initial::{Int, Number, Text};
use ParamType as T;

/// (kind, about, activation, params), in the order the editor lists them.
fn entries() -> Vec<(&'static str, &'static str, bool, Vec<P>)> {
    let pool = || {
        vec![
            p("size", T::Int).initial(Int(2)),
            p("stride", T::Int).unset("size"),
            p("padding", T::Int),
        ]
    };
    vec![
        (
            "conv2d",
            "convolution",
            false,
            vec![
                p("out", T::Int).initial(Int(8)),
                p("kernel", T::Int).initial(Int(3)),
                p("stride", T::Int),
                p("padding", T::Padding).initial(Text("same")),
            ],
        ),
        (
            "conv_transpose2d",
            "transposed convolution (up-sampling)",
            false,
            vec![
                p("out", T::Int).initial(Int(8)),
                p("kernel", T::Int).initial(Int(2)),
                p("stride", T::Int).initial(Int(2)),
                p("padding", T::Int),
                p("output_padding", T::Int),
            ],
        ),
        (
            "linear",
            "fully connected",
            false,
            vec![p("out", T::Int).initial(Int(32))],
        ),
        ("relu", "max(0, x)", true, vec![]),
        ("leaky_relu", "x, or slope·x below 0", true, vec![p("slope", T::Number)]),
        ("tanh", "tanh(x)", true, vec![]),
        ("sigmoid", "1 / (1 + e^-x)", true, vec![]),
        ("max_pool", "max over a window", false, pool()),
        ("avg_pool", "mean over a window", false, pool()),
        ("global_avg_pool", "mean of each map: (C,H,W) -> (C)", false, vec![]),
        (
            "max_unpool",
            "puts values back where a max_pool found them",
            false,
            vec![p("pool", T::Name).initial(Text(""))],
        ),
        (
            "upsample",
            "enlarge by a whole factor",
            false,
            vec![p("scale", T::Int), p("mode", T::Enum).values(&["nearest", "bilinear"])],
        ),
        (
            "batch_norm",
            "normalise each channel (batch statistics while training)",
            false,
            vec![p("momentum", T::Number), p("eps", T::Number)],
        ),
        (
            "dropout",
            "zero units at random while training",
            false,
            vec![
                p("p", T::Number).initial(Number(0.5)),
                p("scaling", T::Enum).values(&["inverted", "classic"]),
            ],
        ),
        (
            "inception",
            "GoogLeNet block: 1×1 | 1×1→3×3 | 1×1→5×5 | pool→1×1, concatenated",
            false,
            ["b1", "b3_reduce", "b3", "b5_reduce", "b5", "pool_proj"]
                .into_iter()
                .zip([4, 6, 8, 1, 2, 2])
                .map(|(key, width)| p(key, T::Int).initial(Int(width)))
                // false: the naive block (no 1×1 reductions; b3_reduce, b5_reduce ignored)
                .chain([p("reduce", T::Bool).unset("true")])
                .collect(),
        ),
        ("concat", "join inputs on channels (set inputs)", false, vec![]),
        ("add", "sum two inputs (set inputs)", false, vec![]),
        ("flatten", "(C,H,W) -> (C·H·W)", false, vec![]),
    ]
}

fn initial_json(v: Initial) -> Value {
    match v {
        Initial::Int(n) => n.into(),
        Initial::Number(x) => x.into(),
        Initial::Text(s) => s.into(),
    }
}

/// A layer of `kind` with the initial values of `params` (but `skip`), as JSON.
fn layer_json(kind: &str, params: &[P], skip: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), kind.into());
    for q in params.iter().filter(|q| Some(q.key) != skip) {
        if let Some(v) = q.initial {
            m.insert(q.key.into(), initial_json(v));
        }
    }
    Value::Object(m)
}

/// What `key` becomes when a layer of `kind` leaves it out (None: it is required).
fn fallback(kind: &str, params: &[P], q: &P) -> Option<String> {
    let op: LayerSpec = serde_json::from_value(layer_json(kind, params, Some(q.key))).ok()?;
    // through text, so an f32 default reads as written (0.01, not 0.009999999776482582)
    let parsed: Value = serde_json::from_str(&serde_json::to_string(&op).ok()?).ok()?;
    // a key serde leaves out when it holds its default (inception's reduce) reads as `unset`
    let Some(value) = parsed.get(q.key) else {
        return q.unset.map(str::to_string);
    };
    match value {
        Value::Null => q.unset.map(str::to_string),
        Value::String(s) => Some(s.clone()),
        // small numbers as they are usually written: 1e-5, not 0.00001
        Value::Number(n) => match n.as_f64() {
            Some(x) if !n.is_u64() && x != 0.0 && x.abs() < 1e-3 => Some(format!("{x:e}")),
            _ => Some(n.to_string()),
        },
        other => Some(other.to_string()),
    }
}

/// The whole table, in the order the editor lists the kinds.
pub fn table() -> Vec<Kind> {
    entries()
        .into_iter()
        .map(|(kind, about, activation, params)| Kind {
            kind,
            about,
            activation,
            params: params
                .iter()
                .map(|q| Param {
                    key: q.key,
                    ty: q.ty,
                    fallback: fallback(kind, &params, q),
                    initial: q.initial,
                    values: q.values,
                })
                .collect(),
        })
        .collect()
}

/// The table as JSON, for the wasm edge.
pub fn table_json() -> String {
    serde_json::to_string(&table()).unwrap_or_default()
}

/// A new layer of `kind` with its initial parameters, as JSON (None: no such kind).
pub fn new_layer(kind: &str) -> Option<Value> {
    entries()
        .into_iter()
        .find(|(k, ..)| *k == kind)
        .map(|(k, _, _, params)| layer_json(k, &params, None))
}

/// A small spec around one new layer of `kind` (its initial parameters): what it needs
/// before (a named max_pool for max_unpool, flat input for linear, two inputs for concat
/// and add) and after (flatten, the class scores). The kind table's tests build it, and
/// the completeness tests export it, for every kind.
pub fn example_spec(kind: &str) -> Result<ModelSpec> {
    let mut layer = new_layer(kind).ok_or_else(|| Error::Parse {
        what: "layer kind",
        message: format!("no layer kind \"{kind}\""),
    })?;
    let mut layers = vec![];
    match kind {
        "linear" => layers.push(serde_json::json!({"type": "flatten"})),
        // the editor leaves the pool's name for the reader to fill in
        "max_unpool" => {
            layers.push(serde_json::json!({"type": "max_pool", "name": "p"}));
            layer["pool"] = "p".into();
        }
        "concat" | "add" => layer["inputs"] = serde_json::json!(["input", "input"]),
        _ => {}
    }
    layers.push(layer);
    layers.push(serde_json::json!({"type": "flatten"}));
    layers.push(serde_json::json!({"type": "linear", "out": 10}));
    let spec = serde_json::json!({"input": [1, 28, 28], "classes": 10, "layers": layers});
    ModelSpec::parse(&spec.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names serde lists after "expected" in an unknown-variant error.
    fn serde_variants(error: &str) -> Vec<String> {
        let listed = error.split("expected").nth(1).unwrap_or_default();
        listed.split('`').skip(1).step_by(2).map(str::to_string).collect()
    }

    #[test]
    fn every_layer_kind_of_the_spec_has_exactly_one_entry() {
        let e = serde_json::from_str::<LayerSpec>(r#"{"type":"no_such_kind"}"#).unwrap_err();
        let mut spec_kinds = serde_variants(&e.to_string());
        assert!(spec_kinds.len() > 10, "{e}");
        let mut ours: Vec<String> = table().iter().map(|k| k.kind.to_string()).collect();
        spec_kinds.sort();
        ours.sort();
        assert_eq!(ours, spec_kinds, "the spec's layer kinds and this table must agree");
    }

    #[test]
    fn every_kind_with_its_initial_params_parses_and_validates() {
        for k in table() {
            let spec = example_spec(k.kind).unwrap_or_else(|e| panic!("{}: {e}", k.kind));
            let op = &spec.layers[spec.layers.len() - 3].op;
            assert_eq!(op.kind(), k.kind);
            spec.validate().unwrap_or_else(|e| panic!("{}: {e}", k.kind));
        }
    }

    #[test]
    fn fallbacks_are_the_rust_defaults_and_required_params_have_none() {
        let all = table();
        let param = |kind: &str, key: &str| {
            let k = all.iter().find(|k| k.kind == kind).unwrap();
            k.params.iter().find(|p| p.key == key).unwrap().clone()
        };
        let fallback = |kind, key| param(kind, key).fallback;
        assert_eq!(fallback("conv2d", "out"), None);
        assert_eq!(fallback("conv2d", "stride").as_deref(), Some("1"));
        assert_eq!(fallback("conv2d", "padding").as_deref(), Some("0"));
        assert_eq!(fallback("conv_transpose2d", "stride").as_deref(), Some("1"));
        assert_eq!(fallback("leaky_relu", "slope").as_deref(), Some("0.01"));
        assert_eq!(fallback("max_pool", "size").as_deref(), Some("2"));
        assert_eq!(fallback("avg_pool", "stride").as_deref(), Some("size"));
        assert_eq!(fallback("upsample", "mode").as_deref(), Some("nearest"));
        assert_eq!(fallback("batch_norm", "momentum").as_deref(), Some("0.1"));
        assert_eq!(fallback("batch_norm", "eps").as_deref(), Some("1e-5"));
        assert_eq!(fallback("dropout", "p").as_deref(), Some("0.5"));
        assert_eq!(fallback("dropout", "scaling").as_deref(), Some("inverted"));
        assert_eq!(fallback("max_unpool", "pool"), None);
        assert_eq!(fallback("inception", "b5"), None);
        assert_eq!(fallback("inception", "reduce").as_deref(), Some("true"));
        // and the JSON the page reads
        let json = serde_json::to_value(param("conv2d", "padding")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"key": "padding", "type": "padding", "fallback": "0", "initial": "same"})
        );
        let json = serde_json::to_value(param("dropout", "scaling")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"key": "scaling", "type": "enum", "fallback": "inverted", "values": ["inverted", "classic"]})
        );
    }

    #[test]
    fn enum_values_are_the_spec_variants_and_each_param_takes_its_type() {
        for k in table() {
            for q in &k.params {
                let set = |v: Value| {
                    let mut layer = new_layer(k.kind).unwrap();
                    layer[q.key] = v;
                    serde_json::from_value::<LayerSpec>(layer)
                };
                let ok = |values: Vec<Value>| {
                    for v in values {
                        if let Err(e) = set(v.clone()) {
                            panic!("{}.{} = {v}: {e}", k.kind, q.key);
                        }
                    }
                };
                match q.ty {
                    ParamType::Int => ok(vec![3.into()]),
                    ParamType::Number => ok(vec![0.25.into()]),
                    ParamType::Padding => ok(vec![1.into(), "same".into(), "valid".into()]),
                    ParamType::Name => ok(vec!["p".into()]),
                    ParamType::Bool => ok(vec![true.into(), false.into()]),
                    ParamType::Enum => {
                        let e = set("no_such_value".into()).unwrap_err().to_string();
                        assert_eq!(serde_variants(&e), q.values, "{}.{}: {e}", k.kind, q.key);
                    }
                }
                assert_eq!(q.values.is_empty(), q.ty != ParamType::Enum, "{}.{}", k.kind, q.key);
            }
        }
    }

    #[test]
    fn activations_are_the_elementwise_kinds() {
        let acts: Vec<&str> = table().iter().filter(|k| k.activation).map(|k| k.kind).collect();
        assert_eq!(acts, ["relu", "leaky_relu", "tanh", "sigmoid"]);
    }
}
