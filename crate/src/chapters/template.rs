//! The live-answer template of a chapter (docs/chapters.md): `{a.label}` / `{b.label}` are
//! the twins' labels; `{a.<probe>.<key>|fmt}` reads a scalar of a twin's latest `<probe>`
//! header (keys may go deeper: `{a.kernels.first.max_abs|f3}`), `{a.val.<metric>|fmt}` its
//! latest evaluation. Formats: `pct` (a share in [0, 1] as "68%"), `pct1` ("68.2%"), `f2`,
//! `f3`, `int`. A value not measured yet (missing, not a number, not finite) reads "…".
//! The page's JS fills the same template the same way.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};

/// What the template can read of one twin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TwinValues {
    pub label: String,
    /// The latest header of each probe, by probe name.
    pub probes: BTreeMap<String, Value>,
    /// The latest evaluation: `accuracy`, `loss` and the task's metrics.
    pub val: BTreeMap<String, f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pct,
    Pct1,
    F2,
    F3,
    Int,
}

impl Format {
    fn parse(s: &str) -> Result<Format> {
        Ok(match s {
            "pct" => Format::Pct,
            "pct1" => Format::Pct1,
            "f2" => Format::F2,
            "f3" => Format::F3,
            "int" => Format::Int,
            other => {
                return Err(Error::Config {
                    field: "answer",
                    problem: format!("unknown format {other:?}; the formats are pct, pct1, f2, f3, int"),
                })
            }
        })
    }

    pub fn apply(self, v: f64) -> String {
        if !v.is_finite() {
            return MISSING.to_string();
        }
        match self {
            Format::Pct => format!("{:.0}%", 100.0 * v),
            Format::Pct1 => format!("{:.1}%", 100.0 * v),
            Format::F2 => format!("{v:.2}"),
            Format::F3 => format!("{v:.3}"),
            Format::Int => format!("{:.0}", v.round()),
        }
    }
}

/// What a value not measured yet reads.
pub const MISSING: &str = "…";

#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    Text(String),
    /// `{a.label}`: twin 0 (a) or 1 (b).
    Label(usize),
    /// `{a.<path>|fmt}`: the path's first part is a probe name or `val`.
    Value {
        twin: usize,
        path: Vec<String>,
        format: Format,
    },
}

fn bad(problem: String) -> Error {
    Error::Config {
        field: "answer",
        problem,
    }
}

/// Splits a template into text and placeholders, refusing malformed ones.
pub fn parse(template: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| bad(format!("unclosed {{ in {:?}", &rest[open..])))?;
        pieces.push(placeholder(&after[..close])?);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(bad(format!("a }} without its {{ in {rest:?}")));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

fn placeholder(inner: &str) -> Result<Piece> {
    let (path, format) = match inner.split_once('|') {
        Some((p, f)) => (p, Some(Format::parse(f)?)),
        None => (inner, None),
    };
    let mut parts = path.split('.');
    let twin = match parts.next() {
        Some("a") => 0,
        Some("b") => 1,
        _ => return Err(bad(format!("{{{inner}}} must start with a. or b."))),
    };
    let path: Vec<String> = parts.map(str::to_string).collect();
    if path.iter().any(String::is_empty) || path.is_empty() {
        return Err(bad(format!("{{{inner}}} has an empty name")));
    }
    match (path.as_slice(), format) {
        ([label], None) if label == "label" => Ok(Piece::Label(twin)),
        ([_], _) => Err(bad(format!(
            "{{{inner}}} names no probe key: use {{a.<probe>.<key>|fmt}} or {{a.val.<metric>|fmt}}"
        ))),
        (_, None) => Err(bad(format!("{{{inner}}} needs a format (|pct, |pct1, |f2, |f3, |int)"))),
        (_, Some(format)) => Ok(Piece::Value { twin, path, format }),
    }
}

/// The number at `path` in a twin's values, if measured.
pub fn lookup(values: &TwinValues, path: &[String]) -> Option<f64> {
    let (first, rest) = path.split_first()?;
    if first == "val" {
        return match rest {
            [metric] => values.val.get(metric).copied(),
            _ => None,
        };
    }
    let mut v = values.probes.get(first)?;
    for key in rest {
        v = v.get(key)?;
    }
    v.as_f64()
}

/// The template with the twins' values filled in ("…" where one is not measured yet).
pub fn fill(template: &str, a: &TwinValues, b: &TwinValues) -> Result<String> {
    let twins = [a, b];
    let mut out = String::new();
    for piece in parse(template)? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Label(twin) => out.push_str(&twins[twin].label),
            Piece::Value { twin, path, format } => match lookup(twins[twin], &path) {
                Some(v) => out.push_str(&format.apply(v)),
                None => out.push_str(MISSING),
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn twin(label: &str, zero: f64, norm: f64, acc: f64) -> TwinValues {
        TwinValues {
            label: label.into(),
            probes: [(
                "kernels".to_string(),
                json!({"zero_share": zero, "norm": norm, "first": {"max_abs": 0.5}}),
            )]
            .into(),
            val: [("accuracy".to_string(), acc)].into(),
        }
    }

    #[test]
    fn fills_labels_probe_scalars_and_evaluations_in_each_format() {
        let a = twin("L1", 0.6849, 2.6049, 0.9712);
        let b = twin("L2", 0.0, 3.3, 0.975);
        let t = "{a.label}: {a.kernels.zero_share|pct} zero ({a.kernels.zero_share|pct1}); {b.label}: \
                 {b.kernels.zero_share|pct}, norm {a.kernels.norm|f2} vs {b.kernels.norm|f3}, \
                 acc {a.val.accuracy|pct1}, {a.kernels.first.max_abs|f2}, n={b.kernels.norm|int}";
        assert_eq!(
            fill(t, &a, &b).unwrap(),
            "L1: 68% zero (68.5%); L2: 0%, norm 2.60 vs 3.300, acc 97.1%, 0.50, n=3"
        );
    }

    #[test]
    fn values_not_measured_yet_read_as_an_ellipsis() {
        let a = TwinValues {
            label: "A".into(),
            probes: [("landscape".to_string(), json!({"loss_range": null, "beta": "x"}))].into(),
            ..TwinValues::default()
        };
        let b = TwinValues::default();
        let t = "{a.landscape.loss_range|f3} {a.landscape.beta|f2} {a.landscape.grad_change|f2} {b.val.loss|f3} {b.kernels.norm|f2}";
        assert_eq!(fill(t, &a, &b).unwrap(), "… … … … …");
        assert_eq!(Format::Pct.apply(f64::NAN), "…");
        assert_eq!(Format::Int.apply(f64::INFINITY), "…");
    }

    #[test]
    fn malformed_placeholders_are_refused_naming_them() {
        for (t, want) in [
            ("{a.kernels.norm|f9}", "unknown format \"f9\""),
            ("{c.label}", "must start with a. or b."),
            ("{a.kernels.norm", "unclosed {"),
            ("x } y", "without its {"),
            ("{a.kernels.norm}", "needs a format"),
            ("{a.norm|f2}", "names no probe key"),
            ("{a..norm|f2}", "empty name"),
        ] {
            let e = parse(t).unwrap_err().to_string();
            assert!(e.contains(want), "{t}: {e}");
        }
        assert_eq!(
            parse("no placeholders").unwrap(),
            vec![Piece::Text("no placeholders".into())]
        );
    }
}
