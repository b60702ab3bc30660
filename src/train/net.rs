//! A trainable network: the layers of a validated spec, run forward and backward on batches.

use std::collections::BTreeMap;

use ndarray::Array4;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::act::Act;
use super::avgpool::AvgPool;
use super::batchnorm::BatchNorm;
use super::buffers::Buffers;
use super::conv::{Conv2d, Window};
use super::maxpool::MaxPool;
use super::param::Param;
use super::weights::QuantWeights;
use crate::spec::{Network, Op};

#[derive(Debug, Clone)]
pub enum Layer {
    /// Conv2d and dense layers (a dense layer is a 1x1 convolution of a 1x1 input).
    Mac(Conv2d),
    BatchNorm(BatchNorm),
    Act(Act),
    MaxPool(MaxPool),
    AvgPool(AvgPool),
    /// The previous layer's output plus the output of layer `from` (an earlier index).
    Add {
        from: usize,
    },
    Flatten,
}

/// A network with its parameters, ready to train or evaluate.
#[derive(Debug, Clone)]
pub struct Net {
    pub network: Network,
    pub layers: Vec<Layer>,
    /// Tensors' storage, reused from batch to batch.
    buffers: Buffers,
}

/// A tensor of saved parameters: its shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Net {
    /// A freshly initialised network; the same seed gives the same weights on every machine.
    pub fn new(network: &Network, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = network
            .layers
            .iter()
            .map(|plan| match plan.op {
                Op::Conv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                    weights,
                    bias,
                } => {
                    let fan_in = kernel * kernel * plan.input.channels;
                    Layer::Mac(Conv2d::new(
                        plan.input,
                        plan.output,
                        Window {
                            kernel,
                            stride,
                            padding,
                        },
                        QuantWeights::init(fan_in, filters, weights.bits(), &mut rng),
                        bias.then(|| Param::trainable("bias", vec![filters], vec![0.0; filters])),
                    ))
                }
                Op::Dense {
                    units,
                    weights,
                    bias,
                } => {
                    let fan_in = plan.input.len();
                    Layer::Mac(Conv2d::new(
                        plan.input,
                        plan.output,
                        Window {
                            kernel: 1,
                            stride: 1,
                            padding: 0,
                        },
                        QuantWeights::init(fan_in, units, weights.bits(), &mut rng),
                        bias.then(|| Param::trainable("bias", vec![units], vec![0.0; units])),
                    ))
                }
                Op::BatchNorm => Layer::BatchNorm(BatchNorm::new(plan.output.channels)),
                Op::Act { bits } => Layer::Act(Act::new(bits.bits())),
                Op::MaxPool { size, stride } => {
                    Layer::MaxPool(MaxPool::new(plan.input, plan.output, size, stride))
                }
                Op::AvgPool { size, stride } => {
                    Layer::AvgPool(AvgPool::new(plan.input, plan.output, size, stride))
                }
                Op::Add { from } => Layer::Add { from },
                Op::Flatten => Layer::Flatten,
            })
            .collect();
        Net {
            network: network.clone(),
            layers,
            buffers: Buffers::default(),
        }
    }

    /// Logits `[batch, 1, 1, classes]` of a batch of inputs `[batch, h, w, c]` (pixel values).
    pub fn forward(&mut self, mut x: Array4<f32>, training: bool) -> Array4<f32> {
        let last_reader = self.last_skip_readers();
        // The outputs that adds read later, each kept until its last reader has added it.
        let mut skips: BTreeMap<usize, Array4<f32>> = BTreeMap::new();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let buffers = &mut self.buffers;
            x = match layer {
                Layer::Mac(conv) => conv.forward(x, training, buffers),
                Layer::BatchNorm(bn) => bn.forward(x, training),
                Layer::Act(act) => act.forward(x, training),
                Layer::MaxPool(pool) => {
                    let y = pool.forward(&x, training, buffers);
                    buffers.recycle(x);
                    y
                }
                Layer::AvgPool(pool) => pool.forward(&x),
                Layer::Add { from } => {
                    let from = *from;
                    if last_reader[from] == Some(i) {
                        let skip = skips.remove(&from).expect("kept for its adds");
                        x + skip
                    } else {
                        x + &skips[&from]
                    }
                }
                Layer::Flatten => {
                    let batch = x.dim().0;
                    let channels = self.network.layers[i].output.channels;
                    x.into_shape_with_order((batch, 1, 1, channels))
                        .expect("contiguous")
                }
            };
            if last_reader[i].is_some() {
                skips.insert(i, x.clone());
            }
        }
        x
    }

    /// For every layer, the last add that reads its output, if any.
    fn last_skip_readers(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.layers.len()];
        for (i, layer) in self.layers.iter().enumerate() {
            if let Layer::Add { from } = *layer {
                last[from] = Some(i);
            }
        }
        last
    }

    /// Back-propagates the gradient of the loss with respect to the logits of the last
    /// training forward pass, leaving every parameter's gradient in place.
    pub fn backward(&mut self, mut dy: Array4<f32>) {
        // The gradients that adds send along their skips, summed per source layer until the
        // backward pass reaches it.
        let mut skip_grads: BTreeMap<usize, Array4<f32>> = BTreeMap::new();
        for (i, layer) in self.layers.iter_mut().enumerate().rev() {
            if let Some(skip) = skip_grads.remove(&i) {
                dy += &skip;
            }
            let input = self.network.layers[i].input;
            let buffers = &mut self.buffers;
            dy = match layer {
                Layer::Mac(conv) => {
                    // The first layer's input is data: its gradient is never needed.
                    let dx = conv.backward(&dy, i > 0, buffers);
                    buffers.recycle(dy);
                    match dx {
                        Some(dx) => dx,
                        None => return,
                    }
                }
                Layer::BatchNorm(bn) => bn.backward(dy),
                Layer::Act(act) => act.backward(dy),
                Layer::MaxPool(pool) => {
                    let dx = pool.backward(&dy, buffers);
                    buffers.recycle(dy);
                    dx
                }
                Layer::AvgPool(pool) => pool.backward(&dy),
                Layer::Add { from } => {
                    // Both inputs receive the whole gradient.
                    match skip_grads.get_mut(from) {
                        Some(sum) => *sum += &dy,
                        None => {
                            skip_grads.insert(*from, dy.clone());
                        }
                    }
                    dy
                }
                Layer::Flatten => {
                    let batch = dy.dim().0;
                    dy.into_shape_with_order((batch, input.height, input.width, input.channels))
                        .expect("contiguous")
                }
            };
        }
    }

    /// Frees the gradients, optimizer moments, quantized weights and cached activations of
    /// training, which the model file does not keep: saving then stays below the training
    /// peak. Evaluating afterwards works; training again does not.
    pub fn release_training_state(&mut self) {
        self.buffers.release();
        for layer in &mut self.layers {
            match layer {
                Layer::Mac(conv) => conv.release_training_state(),
                Layer::BatchNorm(bn) => bn.release_training_state(),
                Layer::Act(act) => act.release_training_state(),
                Layer::MaxPool(pool) => pool.release_training_state(),
                // Average pools and adds keep nothing between passes.
                Layer::AvgPool(_) | Layer::Add { .. } | Layer::Flatten => {}
            }
        }
    }

    /// Every parameter and state tensor, with the name of the layer it belongs to.
    pub fn params_mut(&mut self) -> Vec<(&str, &mut Param)> {
        let mut all = Vec::new();
        for (layer, plan) in self.layers.iter_mut().zip(&self.network.layers) {
            let params = match layer {
                Layer::Mac(conv) => conv.params_mut(),
                Layer::BatchNorm(bn) => bn.params_mut(),
                _ => Vec::new(),
            };
            all.extend(params.into_iter().map(|p| (plan.name.as_str(), p)));
        }
        all
    }

    /// Parameters and state by `layer.param` name, in a stable order.
    pub fn tensors(&mut self) -> BTreeMap<String, Tensor> {
        self.params_mut()
            .into_iter()
            .map(|(layer, p)| {
                (
                    format!("{layer}.{}", p.name),
                    Tensor {
                        shape: p.shape.clone(),
                        values: p.value.clone(),
                    },
                )
            })
            .collect()
    }

    /// Replaces every parameter by the tensor of the same name. The caller checks names and
    /// shapes with [`Net::check_tensors`] first.
    pub fn load_tensors(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<(), String> {
        self.check_tensors(tensors)?;
        for (layer, p) in self.params_mut() {
            p.value
                .clone_from(&tensors[&format!("{layer}.{}", p.name)].values);
        }
        Ok(())
    }

    /// Checks that `tensors` holds exactly this network's parameters with their shapes.
    pub fn check_tensors(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<(), String> {
        let expected = self.tensors();
        for (name, tensor) in &expected {
            match tensors.get(name) {
                None => return Err(format!("parameter {name} is missing")),
                Some(t) if t.shape != tensor.shape => {
                    return Err(format!(
                        "parameter {name} has shape {:?} but the network needs {:?}",
                        t.shape, tensor.shape
                    ))
                }
                Some(t) if t.values.len() != tensor.values.len() => {
                    return Err(format!(
                        "parameter {name} holds {} values but its shape {:?} needs {}",
                        t.values.len(),
                        t.shape,
                        tensor.values.len()
                    ))
                }
                Some(t) if t.values.iter().any(|v| !v.is_finite()) => {
                    return Err(format!("parameter {name} holds a value that is not finite"))
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = tensors.keys().find(|name| !expected.contains_key(*name)) {
            return Err(format!("parameter {extra} does not belong to this network"));
        }
        Ok(())
    }
}
