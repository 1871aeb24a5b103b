// RUN: convir-opt %s --split-input-file --verify-diagnostics | filecheck %s

// Hand-written windows with zero or negative strides, dilations, kernels or pads get a
// diagnostic naming the op and the attribute, never an arithmetic error from the shape rules.

func.func @negative_stride(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 1, -2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x6x6xf32>
  func.return %y : tensor<1x4x6x6xf32>
}
// CHECK: 'conv.conv2d' strides must all be >= 1, got [1, -2]

// -----

func.func @zero_dilation(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 0, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x6x6xf32>
  func.return %y : tensor<1x4x6x6xf32>
}
// CHECK: 'conv.conv2d' dilations must all be >= 1, got [0, 1]

// -----

func.func @negative_pad(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, -1, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x6x6xf32>
  func.return %y : tensor<1x4x6x6xf32>
}
// CHECK: 'conv.conv2d' pads must all be >= 0, got [0, -1, 0, 0]

// -----

func.func @three_strides(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x6x6xf32>
  func.return %y : tensor<1x4x6x6xf32>
}
// CHECK: 'conv.conv2d' strides must have 2 values, got [1, 1, 1]

// -----

func.func @pool_zero_stride(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32> {
  %y = conv.pool %x {kind = "max", kernel = array<i64: 2, 2>, strides = array<i64: 0, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : tensor<1x3x8x8xf32> -> tensor<1x3x4x4xf32>
  func.return %y : tensor<1x3x4x4xf32>
}
// CHECK: 'conv.pool' strides must all be >= 1, got [0, 2]

// -----

func.func @pool_zero_kernel(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32> {
  %y = conv.pool %x {kind = "avg", kernel = array<i64: 0, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : tensor<1x3x8x8xf32> -> tensor<1x3x4x4xf32>
  func.return %y : tensor<1x3x4x4xf32>
}
// CHECK: 'conv.pool' kernel must all be >= 1, got [0, 2]

// -----

func.func @pool_negative_dilation(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32> {
  %y = conv.pool %x {kind = "max", kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, -1>} : tensor<1x3x8x8xf32> -> tensor<1x3x4x4xf32>
  func.return %y : tensor<1x3x4x4xf32>
}
// CHECK: 'conv.pool' dilations must all be >= 1, got [1, -1]
