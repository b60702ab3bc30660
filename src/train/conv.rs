//! 2-D convolution over NHWC tensors by im2col and a matrix product.

use ndarray::{Array4, ArrayView2, ArrayViewMut2};

use super::buffers::Buffers;
use super::param::Param;
use super::weights::QuantWeights;
use crate::kernels::gemm::matmul;
use crate::kernels::window::{add_bias, col2im, column_sums, im2col};
use crate::kernels::Shape;
pub use crate::kernels::Window;

#[derive(Debug, Clone)]
pub struct Conv2d {
    pub input: Shape,
    pub output: Shape,
    pub window: Window,
    /// `[kernel * kernel * input channels, filters]`, rows ordered (ky, kx, channel).
    pub weights: QuantWeights,
    pub bias: Option<Param>,
    /// im2col of the last training input, `[batch * out_h * out_w, fan_in]`.
    cols: Vec<f32>,
    batch: usize,
}

impl Conv2d {
    pub fn new(
        input: Shape,
        output: Shape,
        window: Window,
        weights: QuantWeights,
        bias: Option<Param>,
    ) -> Self {
        Conv2d {
            input,
            output,
            window,
            weights,
            bias,
            cols: Vec::new(),
            batch: 0,
        }
    }

    fn fan_in(&self) -> usize {
        self.window.kernel * self.window.kernel * self.input.channels
    }

    fn rows_per_image(&self) -> usize {
        self.output.height * self.output.width
    }

    /// The output for input `x`, in storage taken from `buffers`; `x`'s storage goes back to
    /// them, or becomes the im2col rows the backward pass needs.
    pub fn forward(
        &mut self,
        x: Array4<f32>,
        training: bool,
        buffers: &mut Buffers,
    ) -> Array4<f32> {
        let batch = x.dim().0;
        let (rows, fan_in) = (batch * self.rows_per_image(), self.fan_in());
        let cols = match x.into_raw_vec_and_offset() {
            (values, Some(0)) if self.window.is_pointwise() => {
                buffers.recycle_values(std::mem::take(&mut self.cols));
                values
            }
            (values, offset) => {
                let x = &values[offset.unwrap_or(0)..];
                let mut cols = std::mem::take(&mut self.cols);
                cols.resize(rows * fan_in, 0.0);
                im2col(x, self.input, self.output, self.window, &mut cols);
                buffers.recycle_values(values);
                cols
            }
        };
        assert_eq!(cols.len(), rows * fan_in, "a standard-layout input");
        self.weights.quantize();
        // The product overwrites every output.
        let mut y = buffers.overwritten((
            batch,
            self.output.height,
            self.output.width,
            self.output.channels,
        ));
        {
            let y2 = y
                .view_mut()
                .into_shape_with_order((rows, self.output.channels))
                .expect("contiguous");
            let a = ArrayView2::from_shape((rows, fan_in), &cols).expect("im2col shape");
            let w =
                ArrayView2::from_shape((fan_in, self.output.channels), self.weights.effective())
                    .expect("weight shape");
            matmul(a, w, y2, false);
        }
        if let Some(bias) = &self.bias {
            add_bias(y.as_slice_mut().expect("standard layout"), &bias.value);
        }
        if training {
            self.cols = cols;
            self.batch = batch;
        }
        y
    }

    /// Gradients of the weights (and bias) from `dy`; the input gradient if `need_input_grad`.
    pub fn backward(
        &mut self,
        dy: &Array4<f32>,
        need_input_grad: bool,
        buffers: &mut Buffers,
    ) -> Option<Array4<f32>> {
        let rows = self.batch * self.rows_per_image();
        let (fan_in, filters) = (self.fan_in(), self.output.channels);
        let dy2 = ArrayView2::from_shape((rows, filters), dy.as_slice().expect("standard layout"))
            .expect("dy shape");
        let cols = ArrayView2::from_shape((rows, fan_in), &self.cols).expect("im2col shape");
        // The previous step's gradient buffer is overwritten: a second one would add four
        // bytes a weight to the peak memory.
        let mut grad = std::mem::take(&mut self.weights.param.grad);
        grad.resize(fan_in * filters, 0.0);
        matmul(
            cols.t(),
            dy2,
            ArrayViewMut2::from_shape((fan_in, filters), &mut grad).expect("grad shape"),
            false,
        );
        self.weights.set_gradient(grad);
        if let Some(bias) = &mut self.bias {
            bias.grad = column_sums(dy2);
        }
        if !need_input_grad {
            return None;
        }
        let w = ArrayView2::from_shape((fan_in, filters), self.weights.effective())
            .expect("weight shape");
        // Overwritten by the product (pointwise) or by col2im, which zeroes each image first.
        let mut dx = buffers.overwritten((
            self.batch,
            self.input.height,
            self.input.width,
            self.input.channels,
        ));
        let dx_values = dx.as_slice_mut().expect("standard layout");
        if self.window.is_pointwise() {
            let dx2 = ArrayViewMut2::from_shape((rows, fan_in), dx_values).expect("input shape");
            matmul(dy2, w.t(), dx2, false);
        } else {
            let mut dcols = std::mem::take(&mut self.cols);
            matmul(
                dy2,
                w.t(),
                ArrayViewMut2::from_shape((rows, fan_in), &mut dcols).expect("im2col shape"),
                false,
            );
            col2im(&dcols, self.input, self.output, self.window, dx_values);
            self.cols = dcols;
        }
        Some(dx)
    }

    /// Frees what only training needs (see [`super::Net::release_training_state`]).
    pub fn release_training_state(&mut self) {
        self.weights.release_training_state();
        if let Some(bias) = &mut self.bias {
            bias.release_training_state();
        }
        self.cols = Vec::new();
        self.batch = 0;
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut params = vec![&mut self.weights.param];
        params.extend(self.bias.as_mut());
        params
    }
}
