// RUN: convir-opt %s --split-input-file --verify-diagnostics | filecheck %s

// Verifiers reject bad shapes and attributes with a message naming the op and the mismatch.

func.func @wrong_output_shape(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x8x8xf32>
  func.return %y : tensor<1x4x8x8xf32>
}
// CHECK: 'conv.conv2d' output must have shape [1, 4, 6, 6], got tensor<1x4x8x8xf32>

// -----

// An NCHW input may give an NCHWc output, but only of the right logical size.
func.func @wrong_blocked_output(%x: tensor<1x3x8x8xf32>, %w: tensor<12x3x3x3xf32>) -> tensor<1x1x6x6x8xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<12x3x3x3xf32> -> tensor<1x1x6x6x8xf32>
  func.return %y : tensor<1x1x6x6x8xf32>
}
// CHECK: 'conv.conv2d' output must have shape [1, 2, 6, 6, 8], got tensor<1x1x6x6x8xf32>

// -----

func.func @bad_group(%x: tensor<1x6x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 4 : i64} : tensor<1x6x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x6x6xf32>
  func.return %y : tensor<1x4x6x6xf32>
}
// CHECK: 'conv.conv2d' group 4 must divide input channels 6 and output channels 4

// -----

func.func @channels_mismatch(%x: tensor<1x5x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x5x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x6x6xf32>
  func.return %y : tensor<1x4x6x6xf32>
}
// CHECK: 'conv.conv2d' weight has 3 input channels per group, input needs 5

// -----

func.func @zero_stride(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 0, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x6x6xf32>
  func.return %y : tensor<1x4x6x6xf32>
}
// CHECK: 'conv.conv2d' strides must all be >= 1, got [0, 1]

// -----

func.func @bias_shape(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x4x6x6xf32> {
  %y = conv.conv2d %x, %w bias %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> bias tensor<3xf32> -> tensor<1x4x6x6xf32>
  func.return %y : tensor<1x4x6x6xf32>
}
// CHECK: 'conv.conv2d' bias must have shape [4], got [3]

// -----

func.func @kernel_too_big(%x: tensor<1x3x2x2xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x1x1xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x2x2xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x1x1xf32>
  func.return %y : tensor<1x4x1x1xf32>
}
// CHECK: 'conv.conv2d' kernel 3x3 does not fit the padded input 2x2

// -----

func.func @unknown_activation(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32> {
  %y = conv.activation %x {kind = "swish_fast"} : tensor<1x3x8x8xf32> -> tensor<1x3x8x8xf32>
  func.return %y : tensor<1x3x8x8xf32>
}
// CHECK: 'conv.activation' kind 'swish_fast' is unknown; expected one of relu, leaky_relu, clip, sigmoid, hard_sigmoid, hard_swish, tanh, identity, erf

// -----

func.func @pool_shape(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32> {
  %y = conv.pool %x {kind = "max", kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : tensor<1x3x8x8xf32> -> tensor<1x3x4x4xf32>
  func.return %y : tensor<1x3x4x4xf32>
}
// CHECK: 'conv.pool' output must have shape [1, 3, 3, 3], got tensor<1x3x4x4xf32>

// -----

func.func @pool_kind(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x1x1xf32> {
  %y = conv.global_pool %x {kind = "sum"} : tensor<1x3x8x8xf32> -> tensor<1x3x1x1xf32>
  func.return %y : tensor<1x3x1x1xf32>
}
// CHECK: 'conv.global_pool' kind 'sum' is unknown; expected one of max, avg

// -----

func.func @no_broadcast(%x: tensor<1x3x8x8xf32>, %y: tensor<1x4x1x1xf32>) -> tensor<1x3x8x8xf32> {
  %z = conv.binary %x, %y {kind = "add"} : tensor<1x3x8x8xf32>, tensor<1x4x1x1xf32> -> tensor<1x3x8x8xf32>
  func.return %z : tensor<1x3x8x8xf32>
}
// CHECK: 'conv.binary' operand shapes [1, 3, 8, 8] and [1, 4, 1, 1] do not broadcast

// -----

func.func @not_f32(%x: tensor<1x3x8x8xf16>) -> tensor<1x3x8x8xf16> {
  %y = conv.activation %x {kind = "relu"} : tensor<1x3x8x8xf16> -> tensor<1x3x8x8xf16>
  func.return %y : tensor<1x3x8x8xf16>
}
// CHECK: 'conv.activation' input must be a tensor of f32, got tensor<1x3x8x8xf16>

// -----

func.func @gemm_inner(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) -> tensor<2x5xf32> {
  %y = conv.gemm %a, %b {alpha = 1.0 : f32, beta = 1.0 : f32} : tensor<2x3xf32>, tensor<4x5xf32> -> tensor<2x5xf32>
  func.return %y : tensor<2x5xf32>
}
// CHECK: 'conv.gemm' inner dimensions differ: a gives K=3, b gives K=4

// -----

func.func @concat_mismatch(%a: tensor<1x2x4x4xf32>, %b: tensor<1x2x5x4xf32>) -> tensor<1x4x4x4xf32> {
  %y = conv.concat %a, %b {axis = 1 : i64} : tensor<1x2x4x4xf32>, tensor<1x2x5x4xf32> -> tensor<1x4x4x4xf32>
  func.return %y : tensor<1x4x4x4xf32>
}
// CHECK: 'conv.concat' input shapes [[1, 2, 4, 4], [1, 2, 5, 4]] differ off axis 1

// -----

func.func @reshape_count(%a: tensor<1x8xf32>) -> tensor<1x9xf32> {
  %y = conv.reshape %a : tensor<1x8xf32> -> tensor<1x9xf32>
  func.return %y : tensor<1x9xf32>
}
// CHECK: 'conv.reshape' cannot reshape [1, 8] (8 elements) to [1, 9] (9 elements)

// -----

func.func @transpose_perm(%a: tensor<1x8xf32>) -> tensor<8x1xf32> {
  %y = conv.transpose %a {perm = array<i64: 1, 1>} : tensor<1x8xf32> -> tensor<8x1xf32>
  func.return %y : tensor<8x1xf32>
}
// CHECK: 'conv.transpose' perm [1, 1] is not a permutation of the 2 axes

// -----

func.func @pack_shape(%a: tensor<1x3x4x4xf32>) -> tensor<1x1x4x4x4xf32> {
  %y = conv.pack %a {block = 8 : i64} : tensor<1x3x4x4xf32> -> tensor<1x1x4x4x4xf32>
  func.return %y : tensor<1x1x4x4x4xf32>
}
// CHECK: 'conv.pack' output must have shape [1, 1, 4, 4, 8], got tensor<1x1x4x4x4xf32>

// -----

func.func @unpack_shape(%a: tensor<1x2x4x4x8xf32>) -> tensor<1x3x4x4xf32> {
  %y = conv.unpack %a : tensor<1x2x4x4x8xf32> -> tensor<1x3x4x4xf32>
  func.return %y : tensor<1x3x4x4xf32>
}
// CHECK: 'conv.unpack' output [1, 3, 4, 4] does not unpack input [1, 2, 4, 4, 8]

// -----

func.func @slice_range(%a: tensor<1x8xf32>) -> tensor<1x4xf32> {
  %y = conv.slice %a {axis = 1 : i64, start = 6 : i64, end = 10 : i64} : tensor<1x8xf32> -> tensor<1x4xf32>
  func.return %y : tensor<1x4xf32>
}
// CHECK: 'conv.slice' range [6, 10) is not inside axis 1 of size 8

// -----

func.func @bn_param(%x: tensor<1x3x4x4xf32>, %p: tensor<3xf32>, %q: tensor<4xf32>) -> tensor<1x3x4x4xf32> {
  %y = conv.batchnorm %x, %p, %p, %q, %p {epsilon = 1.0e-05 : f32} : tensor<1x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<4xf32>, tensor<3xf32> -> tensor<1x3x4x4xf32>
  func.return %y : tensor<1x3x4x4xf32>
}
// CHECK: 'conv.batchnorm' mean must have shape [3], got tensor<4xf32>

// -----

func.func @pad_count(%x: tensor<1x3xf32>) -> tensor<1x5xf32> {
  %y = conv.pad %x {pads = array<i64: 0, 1, 1>, value = 0.0 : f32} : tensor<1x3xf32> -> tensor<1x5xf32>
  func.return %y : tensor<1x5xf32>
}
// CHECK: 'conv.pad' pads must have 4 values, got [0, 1, 1]

// -----

func.func @lrn_rank(%x: tensor<1x3xf32>) -> tensor<1x3xf32> {
  %y = conv.lrn %x {size = 3 : i64, alpha = 1.0e-04 : f32, beta = 7.5e-01 : f32, bias = 1.0 : f32} : tensor<1x3xf32> -> tensor<1x3xf32>
  func.return %y : tensor<1x3xf32>
}
// CHECK: 'conv.lrn' input must have rank 4, got shape [1, 3]

// -----

func.func @softmax_axis(%x: tensor<1x3xf32>) -> tensor<1x3xf32> {
  %y = conv.softmax %x {axis = 2 : i64} : tensor<1x3xf32> -> tensor<1x3xf32>
  func.return %y : tensor<1x3xf32>
}
// CHECK: 'conv.softmax' axis 2 is out of range for rank 2

// -----

func.func @conv_transpose_weight(%x: tensor<1x2x4x4xf32>, %w: tensor<3x3x3x3xf32>) -> tensor<1x3x9x9xf32> {
  %y = conv.conv_transpose %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<3x3x3x3xf32> -> tensor<1x3x9x9xf32>
  func.return %y : tensor<1x3x9x9xf32>
}
// CHECK: 'conv.conv_transpose' weight [C, O/group, KH, KW] = [3, 3, 3, 3] must have C = 2 input channels

// -----

func.func @conv_transpose_output(%x: tensor<1x2x4x4xf32>, %w: tensor<2x3x3x3xf32>) -> tensor<1x3x8x8xf32> {
  %y = conv.conv_transpose %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 0, 0>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x3x3x3xf32> -> tensor<1x3x8x8xf32>
  func.return %y : tensor<1x3x8x8xf32>
}
// CHECK: 'conv.conv_transpose' output must have shape [1, 3, 9, 9], got tensor<1x3x8x8xf32>

// -----

func.func @interleave_rows(%p: tensor<1x3x4x4xf32>) -> tensor<1x3x7x8xf32> {
  %y = conv.interleave %p, %p, %p, %p {strides = array<i64: 2, 2>} : tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32> -> tensor<1x3x7x8xf32>
  func.return %y : tensor<1x3x7x8xf32>
}
// CHECK: 'conv.interleave' phase (1, 0) must have shape [1, 3, 3, 4], got tensor<1x3x4x4xf32>

// -----

func.func @interleave_phases(%p: tensor<1x3x4x4xf32>) -> tensor<1x3x8x8xf32> {
  %y = conv.interleave %p, %p {strides = array<i64: 2, 2>} : tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32> -> tensor<1x3x8x8xf32>
  func.return %y : tensor<1x3x8x8xf32>
}
// CHECK: 'conv.interleave' needs 4 phases, got 2
