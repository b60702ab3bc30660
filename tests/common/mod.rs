//! Helpers shared by the integration tests: run the `qnnc` binary as a user would and check
//! what it says.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

/// Runs the binary with `args`.
pub fn qnnc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qnnc"))
        .args(args)
        .output()
        .expect("qnnc runs")
}

/// The path of a file in `examples/`.
pub fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Standard output of a run that must succeed; its output is shown if it did not.
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Asserts a user error: exit code 1, no panic, and one line on standard error containing
/// every `needle`.
pub fn assert_user_error(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
}

/// A run of `qnnc sim --allow-edited` that fails: exit code 1, a warning naming `edited` and
/// then one error line holding every needle.
pub fn assert_edited_run_error(output: &Output, edited: &str, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "not a warning and one error: {stderr}");
    assert!(
        lines[0].starts_with("warning:") && lines[0].contains(edited),
        "{stderr}"
    );
    for needle in needles {
        assert!(lines[1].contains(needle), "{needle:?} not in: {stderr}");
    }
}

/// The models `train` made in this test run, by spec and bits.
type TrainedModels = BTreeMap<(String, String), Arc<OnceLock<Vec<u8>>>>;
static TRAINED: Mutex<TrainedModels> = Mutex::new(BTreeMap::new());

/// A briefly trained model of `examples/{spec}` at `bits`, in `dir`: enough for activations
/// that vary, which is all bit-exactness and import need. Training is seeded and deterministic,
/// so each spec and width is trained once a test run and its bytes are copied to the tests
/// that ask for it again.
pub fn train(dir: &std::path::Path, spec: &str, bits: &str) -> String {
    let model = dir
        .join(format!("{}_q{bits}.qnn", spec.trim_end_matches(".toml")))
        .display()
        .to_string();
    let slot = Arc::clone(
        TRAINED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry((spec.to_string(), bits.to_string()))
            .or_default(),
    );
    let mut trained_here = false;
    let bytes = slot.get_or_init(|| {
        trained_here = true;
        train_once(&model, spec, bits);
        std::fs::read(&model).expect("the trained model is read")
    });
    if !trained_here {
        std::fs::write(&model, bytes).expect("the trained model is copied");
    }
    model
}

/// Trains `examples/{spec}` at `bits` into `model`.
fn train_once(model: &str, spec: &str, bits: &str) {
    ok(qnnc(&[
        "train",
        &example(spec),
        "--bits",
        bits,
        "--epochs",
        "1",
        "--train-limit",
        "600",
        "--test-limit",
        "50",
        "--seed",
        "3",
        "-o",
        model,
    ]));
}

/// Direct evaluation of a lowered graph on one image: every node from the values of the nodes
/// it reads, kept in a map.
pub fn naive(graph: &qnnc::ir::Graph, image: &[u8]) -> Vec<i64> {
    let mut values: std::collections::HashMap<petgraph::stable_graph::NodeIndex, Vec<i64>> =
        std::collections::HashMap::new();
    let order = graph.topological_order();
    values.insert(order[0], image.iter().map(|&p| p as i64).collect());
    let mut logits = Vec::new();
    for &n in &order[1..] {
        let inputs = graph.inputs(n);
        let x = &values[&inputs[0]];
        let (i, o) = (
            graph.input_type(n).unwrap().shape,
            graph.output_type(n).unwrap().shape,
        );
        let window = |size: usize, stride: usize, fold: fn(i64, i64) -> i64, start: i64| {
            let mut y = vec![start; o.len()];
            for oy in 0..o.height {
                for ox in 0..o.width {
                    for c in 0..o.channels {
                        for ky in 0..size {
                            for kx in 0..size {
                                let v = x[((oy * stride + ky) * i.width + ox * stride + kx)
                                    * i.channels
                                    + c];
                                let at = (oy * o.width + ox) * o.channels + c;
                                y[at] = fold(y[at], v);
                            }
                        }
                    }
                }
            }
            y
        };
        let y = match &graph.graph[n].op {
            qnnc::ir::Op::Mac {
                kernel,
                stride,
                padding,
                weights: Some(w),
                ..
            } => {
                let mut y = vec![0i64; o.len()];
                for oy in 0..o.height {
                    for ox in 0..o.width {
                        for f in 0..o.channels {
                            let mut acc = 0i64;
                            for ky in 0..*kernel {
                                for kx in 0..*kernel {
                                    let iy = (oy * stride + ky) as isize - *padding as isize;
                                    let ix = (ox * stride + kx) as isize - *padding as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= i.height as isize
                                        || ix >= i.width as isize
                                    {
                                        continue;
                                    }
                                    for c in 0..i.channels {
                                        let a = x[(iy as usize * i.width + ix as usize)
                                            * i.channels
                                            + c];
                                        let row = (ky * kernel + kx) * i.channels + c;
                                        acc += a * w.codes[row * o.channels + f] as i64;
                                    }
                                }
                            }
                            y[(oy * o.width + ox) * o.channels + f] = acc;
                        }
                    }
                }
                y
            }
            qnnc::ir::Op::MultiThreshold(t) => {
                let bipolar =
                    graph.output_type(n).unwrap().precision == qnnc::ir::Precision::Bipolar;
                x.iter()
                    .enumerate()
                    .map(|(k, &a)| {
                        let c = k % o.channels;
                        let count = t.thresholds[c]
                            .iter()
                            .filter(|&&th| if t.descending[c] { a <= th } else { a >= th })
                            .count() as i64;
                        if bipolar {
                            2 * count - 1
                        } else {
                            count
                        }
                    })
                    .collect()
            }
            qnnc::ir::Op::Requantize(r) => x
                .iter()
                .enumerate()
                .map(|(k, &a)| {
                    let c = k % o.channels;
                    let v = (a * r.multiplier[c] + r.offset[c]).div_euclid(1i64 << r.shift);
                    r.clamp.map_or(v, |(lo, hi)| v.clamp(lo, hi))
                })
                .collect(),
            qnnc::ir::Op::MaxPool { size, stride } => window(*size, *stride, i64::max, i64::MIN),
            qnnc::ir::Op::AvgPool { size, stride } => window(*size, *stride, |a, b| a + b, 0),
            qnnc::ir::Op::Add { shifts } => x
                .iter()
                .zip(&values[&inputs[1]])
                .map(|(&a, &b)| (a << shifts[0]) + (b << shifts[1]))
                .collect(),
            qnnc::ir::Op::Flatten => x.clone(),
            qnnc::ir::Op::Output => {
                logits = x.clone();
                continue;
            }
            other => panic!("not lowered: {other:?}"),
        };
        values.insert(n, y);
    }
    logits
}

/// Seeded random weight codes (the step sized so that a MAC's value is of order one) and
/// batch-norm statistics, some gains negative.
pub struct RandomParameters<'a> {
    pub network: &'a qnnc::spec::Network,
    pub seed: u64,
}

impl qnnc::ir::build::LayerParameters for RandomParameters<'_> {
    fn mac(&self, layer: usize, bits: u32) -> Option<(qnnc::ir::Weights, Option<Vec<f32>>)> {
        use rand::{Rng, SeedableRng};
        let plan = &self.network.layers[layer];
        let (fan_in, outputs, bias) = match plan.op {
            qnnc::spec::Op::Conv2d {
                kernel,
                filters,
                bias,
                ..
            } => (kernel * kernel * plan.input.channels, filters, bias),
            qnnc::spec::Op::Dense { units, bias, .. } => (plan.input.len(), units, bias),
            _ => return None,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed * 1000 + layer as u64);
        let largest = if bits == 1 {
            1
        } else {
            (1i32 << (bits - 1)) - 1
        };
        let mut code = || match bits {
            1 => {
                if rng.random::<bool>() {
                    1
                } else {
                    -1
                }
            }
            _ => rng.random_range(-largest..=largest),
        };
        // Each column sums to (nearly) zero, so that the inputs' common level, which is the
        // same for every image, does not decide the class alone: codes and their negations.
        let mut columns: Vec<Vec<i32>> = (0..outputs)
            .map(|_| {
                let half: Vec<i32> = (0..fan_in / 2).map(|_| code()).collect();
                let mut column: Vec<i32> = half.iter().flat_map(|&c| [c, -c]).collect();
                if fan_in % 2 == 1 {
                    column.push(code());
                }
                column
            })
            .collect();
        for column in &mut columns {
            for i in (1..column.len()).rev() {
                column.swap(i, rng.random_range(0..=i));
            }
        }
        let codes: Vec<i32> = (0..fan_in * outputs)
            .map(|k| columns[k % outputs][k / outputs])
            .collect();
        let square = codes.iter().map(|&c| (c * c) as f64).sum::<f64>() / codes.len() as f64;
        // An f32, as trained steps are, so that a QONNX file keeps it exactly.
        let step = (1.0 / (fan_in as f64 * square.max(1e-3) * 0.3).sqrt()) as f32 as f64;
        let bias = bias.then(|| (0..outputs).map(|_| rng.random_range(-0.3..0.3)).collect());
        Some((
            qnnc::ir::Weights {
                step,
                fan_in,
                outputs,
                codes,
            },
            bias,
        ))
    }

    fn batch_norm(&self, layer: usize) -> Option<qnnc::ir::BatchNormParams> {
        use rand::{Rng, SeedableRng};
        let channels = self.network.layers[layer].output.channels;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed * 1000 + 500 + layer as u64);
        let mut values = |lo: f32, hi: f32| -> Vec<f32> {
            (0..channels).map(|_| rng.random_range(lo..hi)).collect()
        };
        let magnitude = values(0.5, 1.5);
        let sign = values(-0.3, 1.0);
        Some(qnnc::ir::BatchNormParams {
            gamma: magnitude
                .iter()
                .zip(&sign)
                .map(|(&m, &s)| if s < 0.0 { -m } else { m })
                .collect(),
            beta: values(-0.4, 0.5),
            mean: values(-0.3, 0.3),
            var: values(0.5, 2.0),
            epsilon: 1e-5,
        })
    }
}
