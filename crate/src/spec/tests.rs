use super::*;
use crate::backend::UpsampleMode;
use serde_json::Value;

fn spec(layers: &str) -> std::result::Result<ModelSpec, Error> {
    ModelSpec::from_json(&format!(r#"{{"input":[1,28,28],"classes":10,"layers":{layers}}}"#))
}

#[test]
fn standard_net_validates_with_shapes_and_counts() {
    let s = spec(
        r#"[{"type":"conv2d","out":8,"kernel":5,"padding":"same"},{"type":"relu"},{"type":"max_pool"},
            {"type":"conv2d","out":16,"kernel":5,"padding":"same"},{"type":"relu"},{"type":"max_pool"},
            {"type":"flatten"},{"type":"linear","out":10}]"#,
    )
    .unwrap();
    let plan = s.validate().unwrap();
    assert_eq!(plan.layers[5].out, vec![16, 7, 7]);
    assert_eq!(plan.params, (8 * 25 + 8) + (16 * 8 * 25 + 16) + (784 * 10 + 10));
}

#[test]
fn activation_layers_validate_and_leaky_slope_defaults() {
    let s = spec(
        r#"[{"type":"tanh"},{"type":"sigmoid"},{"type":"leaky_relu"},{"type":"leaky_relu","slope":0.2},
            {"type":"flatten"},{"type":"linear","out":10}]"#,
    )
    .unwrap();
    assert_eq!(s.layers[2].op, LayerSpec::LeakyRelu { slope: 0.01 });
    assert_eq!(s.layers[3].op, LayerSpec::LeakyRelu { slope: 0.2 });
    assert_eq!(s.validate().unwrap().layers[3].out, vec![1, 28, 28]);
    assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
}

#[test]
fn conv_transpose_layer_validates_with_pytorch_shapes() {
    let s = spec(
        r#"[{"type":"conv_transpose2d","out":8,"kernel":3,"stride":2,"padding":1,"output_padding":1},
            {"type":"conv_transpose2d","out":2,"kernel":2},{"type":"flatten"},{"type":"linear","out":10}]"#,
    )
    .unwrap();
    let plan = s.validate().unwrap();
    // (28-1)·2 - 2 + 3 + 1 = 56, then (56-1)·1 + 2 = 57
    assert_eq!(plan.layers[0].out, vec![8, 56, 56]);
    assert_eq!(plan.layers[1].out, vec![2, 57, 57]);
    assert_eq!(plan.params, (8 * 9 + 8) + (8 * 2 * 4 + 2) + (2 * 57 * 57 * 10 + 10));
    assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
}

#[test]
fn upsample_layer_validates_and_defaults_to_nearest() {
    let s = spec(
        r#"[{"type":"upsample"},{"type":"upsample","scale":3,"mode":"bilinear"},
            {"type":"flatten"},{"type":"linear","out":10}]"#,
    )
    .unwrap();
    assert_eq!(
        s.layers[0].op,
        LayerSpec::Upsample {
            scale: 2,
            mode: UpsampleMode::Nearest
        }
    );
    assert_eq!(s.validate().unwrap().layers[1].out, vec![1, 168, 168]);
    assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
}

#[test]
fn dag_with_inception_concat_add_and_unpool_validates() {
    let s = spec(
        r#"[{"type":"conv2d","out":8,"kernel":3,"padding":1,"name":"stem"},{"type":"batch_norm"},{"type":"relu"},
            {"type":"max_pool","name":"pool1"},
            {"type":"inception","b1":4,"b3_reduce":4,"b3":8,"b5_reduce":2,"b5":4,"pool_proj":4,"name":"inc"},
            {"type":"conv2d","out":20,"kernel":1,"inputs":["pool1"],"name":"proj"},
            {"type":"add","inputs":["inc","proj"],"name":"res"},
            {"type":"conv2d","out":8,"kernel":1},
            {"type":"max_unpool","pool":"pool1","name":"up"},
            {"type":"concat","inputs":["up","stem"]},
            {"type":"global_avg_pool"},{"type":"dropout","p":0.25,"scaling":"classic"},{"type":"linear","out":10}]"#,
    )
    .unwrap();
    let plan = s.validate().unwrap();
    let out = |i: usize| plan.layers[i].out.clone();
    assert_eq!(out(3), vec![8, 14, 14]);
    assert_eq!(out(4), vec![20, 14, 14]);
    assert_eq!(out(6), vec![20, 14, 14]);
    assert_eq!(out(8), vec![8, 28, 28]);
    assert_eq!(out(9), vec![16, 28, 28]);
    assert_eq!(out(10), vec![16]);
    assert_eq!(plan.layers[6].inputs, vec!["inc".to_string(), "proj".to_string()]);
    assert_eq!(plan.layers[1].inputs, vec!["stem".to_string()]);
    assert_eq!(plan.layers[0].inputs, vec![INPUT.to_string()]);
    assert_eq!(plan.layers[1].name, "1");
    let inception = 4 * 8 + 4 + (4 * 8 + 4) + (8 * 4 * 9 + 8) + (2 * 8 + 2) + (4 * 2 * 25 + 4) + (4 * 8 + 4);
    assert_eq!(plan.layers[4].params, inception);
    assert_eq!(plan.layers[1].params, 16);
    let total = (8 * 9 + 8) + 16 + inception + (20 * 8 + 20) + (8 * 20 + 8) + (16 * 10 + 10);
    assert_eq!(plan.params, total);
    // names, inputs and every new field survive a JSON round trip
    assert_eq!(ModelSpec::from_json(&s.to_json()).unwrap(), s);
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = spec(
        r#"[{"type":"conv2d","out":0,"kernel":3},{"type":"relu"},{"type":"dropout","p":2,"inputs":["input"]},
            {"type":"relu","inputs":["ghost"]},{"type":"flatten","inputs":["2"]},{"type":"linear","out":10}]"#,
    )
    .unwrap_err();
    let Error::Specs(list) = &e else {
        panic!("several problems expected, got {e}")
    };
    let text = e.to_string();
    // layer 1 reads the broken layer 0: skipped, not blamed for its shapes, but nothing
    // reads it (nor layer 3); layer 4 reads the broken layer 2: skipped
    assert_eq!(list.len(), 5, "{text}");
    assert!(text.starts_with("5 problems: layer 0 (conv2d): out (0)"), "{text}");
    assert!(text.contains("layer 1 (relu): its output is not read"), "{text}");
    assert!(text.contains("layer 2 (dropout): p 2 must be in [0, 1)"), "{text}");
    assert!(text.contains("layer 3 (relu): reads \"ghost\""), "{text}");
}

#[test]
fn check_json_lists_problems_by_layer_and_never_fails() {
    let v: Value = serde_json::from_str(&check_json("{oops")).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid model spec"));
    assert!(v["errors"][0]["index"].is_null());
    let text = r#"{"input":[1,28,28],"classes":10,"layers":[{"type":"conv2d","out":4,"kernel":3},
            {"type":"linear","out":10}]}"#;
    let v: Value = serde_json::from_str(&check_json(text)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"][0]["index"], 1);
    assert_eq!(v["layers"][0]["out"], serde_json::json!([4, 26, 26]));
    let fixed = text.replace(r#"{"type":"linear""#, r#"{"type":"flatten"},{"type":"linear""#);
    let v: Value = serde_json::from_str(&check_json(&fixed)).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["params"], 4 * 9 + 4 + 4 * 26 * 26 * 10 + 10);
}

#[test]
fn budgets_are_configurable() {
    let s = spec(r#"[{"type":"flatten"},{"type":"linear","out":10}]"#).unwrap();
    let tight = Budget {
        max_params: 1000,
        max_activations: MAX_ACTIVATIONS,
    };
    let e = s.validate_with(&tight).unwrap_err().to_string();
    assert!(e.contains("7850 parameters so far, over the budget of 1000"), "{e}");
    let tight = Budget {
        max_params: MAX_PARAMS,
        max_activations: 100,
    };
    let e = s.validate_with(&tight).unwrap_err().to_string();
    assert!(
        e.contains("activations reach 784 values per example, over the budget of 100"),
        "{e}"
    );
}

#[test]
fn every_error_names_the_layer_and_problem() {
    let cases = [
        (
            r#"[{"type":"linear","out":10}]"#,
            "layer 0 (linear): needs a flat input",
        ),
        (
            r#"[{"type":"conv2d","out":4,"kernel":40}, {"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (conv2d): kernel 40",
        ),
        (
            r#"[{"type":"conv2d","out":4,"kernel":4,"padding":"same"}]"#,
            "odd kernel",
        ),
        (
            r#"[{"type":"conv2d","out":4,"kernel":3,"padding":"wide"}]"#,
            "padding must be",
        ),
        (r#"[{"type":"conv2d","out":0,"kernel":3}]"#, "must be at least 1"),
        (
            r#"[{"type":"flatten"},{"type":"max_pool"}]"#,
            "layer 1 (max_pool): needs a (C,H,W)",
        ),
        (
            r#"[{"type":"flatten"},{"type":"conv2d","out":2,"kernel":3}]"#,
            "layer 1 (conv2d): needs a (C,H,W)",
        ),
        (r#"[{"type":"max_pool","size":30}]"#, "window 30"),
        (
            r#"[{"type":"flatten"},{"type":"linear","out":7}]"#,
            "must end in 10 class scores",
        ),
        (
            r#"[{"type":"flatten"},{"type":"linear","out":100000},{"type":"linear","out":10}]"#,
            "over the budget",
        ),
        (r#"[{"type":"dense","out":3}]"#, "unknown variant `dense`"),
        (r#"[{"type":"relu","alpha":3}]"#, "unknown field `alpha`"),
        (r#"[{"type":"tanh","alpha":3}]"#, "unknown field `alpha`"),
        (r#"[{"type":"sigmoid","slope":0.1}]"#, "unknown field `slope`"),
        (r#"[{"type":"leaky_relu","alpha":3}]"#, "unknown field `alpha`"),
        (
            r#"[{"type":"leaky_relu","slope":1.5},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (leaky_relu): slope 1.5 must be",
        ),
        (
            r#"[{"type":"flatten"},{"type":"leaky_relu","slope":-0.1},{"type":"linear","out":10}]"#,
            "layer 1 (leaky_relu): slope -0.1 must be",
        ),
        (
            r#"[{"type":"conv_transpose2d","out":2,"kernel":3,"stride":2,"output_padding":2}]"#,
            "layer 0 (conv_transpose2d): output_padding 2 must be smaller than stride 2",
        ),
        (
            r#"[{"type":"conv_transpose2d","out":2,"kernel":3,"padding":20}]"#,
            "layer 0 (conv_transpose2d): padding 20 leaves no output for the 28×28 input",
        ),
        (
            r#"[{"type":"conv_transpose2d","out":0,"kernel":3}]"#,
            "layer 0 (conv_transpose2d): out (0), kernel (3) and stride (1) must be at least 1",
        ),
        (
            r#"[{"type":"flatten"},{"type":"conv_transpose2d","out":2,"kernel":3}]"#,
            "layer 1 (conv_transpose2d): needs a (C,H,W)",
        ),
        (
            r#"[{"type":"upsample","scale":0}]"#,
            "layer 0 (upsample): scale (0) must be at least 1",
        ),
        (r#"[{"type":"upsample","mode":"bicubic"}]"#, "unknown variant `bicubic`"),
        (
            r#"[{"type":"flatten"},{"type":"upsample"}]"#,
            "layer 1 (upsample): needs a (C,H,W)",
        ),
        (r#"[]"#, "no layers"),
        (
            r#"[{"type":"max_pool","size":2,"padding":2},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (max_pool): padding 2 must be at most half the window 2",
        ),
        (
            r#"[{"type":"batch_norm","momentum":0},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (batch_norm): momentum 0 must be in (0, 1]",
        ),
        (
            r#"[{"type":"batch_norm","eps":-1},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (batch_norm): eps -1 must be a positive number",
        ),
        (
            r#"[{"type":"dropout","p":1},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (dropout): p 1 must be in [0, 1)",
        ),
        (r#"[{"type":"dropout","scaling":"weird"}]"#, "unknown variant `weird`"),
        (
            r#"[{"type":"flatten"},{"type":"global_avg_pool"},{"type":"linear","out":10}]"#,
            "layer 1 (global_avg_pool): needs a (C,H,W) input (input shape [784])",
        ),
        (
            r#"[{"type":"inception","b1":0,"b3_reduce":1,"b3":1,"b5_reduce":1,"b5":1,"pool_proj":1},
                {"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (inception): every branch width must be at least 1",
        ),
        (r#"[{"type":"inception","b1":2}]"#, "missing field `b3_reduce`"),
        (
            r#"[{"type":"flatten"},{"type":"inception","b1":1,"b3_reduce":1,"b3":1,"b5_reduce":1,"b5":1,"pool_proj":1}]"#,
            "layer 1 (inception): needs a (C,H,W) input",
        ),
        (
            r#"[{"type":"conv2d","out":2,"kernel":3,"name":"a"},{"type":"conv2d","out":3,"kernel":1,"name":"b","inputs":["input"]},
                {"type":"add","inputs":["a","b"]},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 2 (add): inputs must have the same shape, got [2, 26, 26], [3, 28, 28]",
        ),
        (
            r#"[{"type":"conv2d","out":2,"kernel":3,"name":"a"},{"type":"conv2d","out":3,"kernel":1,"name":"b","inputs":["input"]},
                {"type":"concat","inputs":["a","b"]},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 2 (concat): inputs must agree on every axis but channels, got [2, 26, 26], [3, 28, 28]",
        ),
        (
            r#"[{"type":"concat"},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (concat): takes at least 2 input(s), got 1",
        ),
        (
            r#"[{"type":"add","inputs":["input","input","input"]},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (add): takes exactly 2 input(s), got 3",
        ),
        (
            r#"[{"type":"relu","inputs":["nowhere"]},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (relu): reads \"nowhere\", but no layer has that name",
        ),
        (
            r#"[{"type":"relu","inputs":["later"]},{"type":"relu","name":"later"},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 0 (relu): reads \"later\", which comes at or after it",
        ),
        (
            r#"[{"type":"relu","name":"x"},{"type":"relu","name":"x"},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 1 \"x\" (relu): the name \"x\" is already used by layer 0",
        ),
        (
            r#"[{"type":"relu","name":"1st"},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "the name \"1st\" must start with a letter",
        ),
        (
            r#"[{"type":"relu","name":"a.b"},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "the name \"a.b\" must start with a letter",
        ),
        (
            r#"[{"type":"relu","name":"input"},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "reserved for the model input",
        ),
        (r#"[{"type":"relu","name":7}]"#, "a layer name must be a string"),
        (
            r#"[{"type":"relu","inputs":"a"}]"#,
            "inputs must be a list of layer names",
        ),
        (
            r#"[{"type":"relu","name":"dead"},{"type":"flatten","inputs":["input"]},{"type":"linear","out":10}]"#,
            "layer 0 \"dead\" (relu): its output is not read by any later layer",
        ),
        (
            r#"[{"type":"max_pool","name":"p"},{"type":"max_unpool","pool":"q"},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 1 (max_unpool): pool \"q\" is not an earlier layer",
        ),
        (
            r#"[{"type":"relu","name":"p"},{"type":"max_unpool","pool":"p"},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 1 (max_unpool): pool \"p\" is a relu layer, not a max_pool",
        ),
        (
            r#"[{"type":"max_pool","name":"p"},{"type":"max_pool"},{"type":"max_unpool","pool":"p"},{"type":"flatten"},{"type":"linear","out":10}]"#,
            "layer 2 (max_unpool): its input [1, 7, 7] must have the shape of pool \"p\"'s output [1, 14, 14]",
        ),
    ];
    for (layers, want) in cases {
        let e = spec(layers).expect_err(layers).to_string();
        assert!(!e.contains("problems:"), "{layers}: one problem expected, got {e:?}");
        assert!(e.contains(want), "{layers}: got {e:?}, want {want:?}");
    }
    let e = ModelSpec::from_json("{not json").unwrap_err().to_string();
    assert!(e.starts_with("invalid model spec"), "{e}");
    let e = ModelSpec::from_json(r#"{"input":[0,28,28],"classes":10,"layers":[{"type":"flatten"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("zero dimension"), "{e}");
}
