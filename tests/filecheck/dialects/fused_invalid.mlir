// RUN: convir-opt %s --split-input-file --verify-diagnostics | filecheck %s

// conv.fused's verifier names the op and the mismatch.

func.func @one_conv(%x: tensor<1x2x6x6x8xf32>, %w1: tensor<16x1x3x3xf32>) -> tensor<1x2x6x6x8xf32> {
  %y = conv.fused %x, %w1 : (tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32>) -> tensor<1x2x6x6x8xf32> {
  ^bb0(%a: tensor<1x2x6x6x8xf32>, %wa: tensor<16x1x3x3xf32>):
    %t = conv.conv2d %a, %wa {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64} : tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32> -> tensor<1x2x6x6x8xf32>
    conv.yield %t : tensor<1x2x6x6x8xf32>
  }
  func.return %y : tensor<1x2x6x6x8xf32>
}
// CHECK: 'conv.fused' region must hold two conv.conv2d and a conv.yield, got conv.conv2d, conv.yield

// -----

func.func @second_reads_input(%x: tensor<1x2x6x6x8xf32>, %w1: tensor<16x1x3x3xf32>, %w2: tensor<8x16x1x1xf32>) -> tensor<1x1x6x6x8xf32> {
  %y = conv.fused %x, %w1, %w2 : (tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32>, tensor<8x16x1x1xf32>) -> tensor<1x1x6x6x8xf32> {
  ^bb0(%a: tensor<1x2x6x6x8xf32>, %wa: tensor<16x1x3x3xf32>, %wb: tensor<8x16x1x1xf32>):
    %t = conv.conv2d %a, %wa {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64} : tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32> -> tensor<1x2x6x6x8xf32>
    %o = conv.conv2d %a, %wb {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x6x6x8xf32>, tensor<8x16x1x1xf32> -> tensor<1x1x6x6x8xf32>
    conv.yield %o : tensor<1x1x6x6x8xf32>
  }
  func.return %y : tensor<1x1x6x6x8xf32>
}
// CHECK: 'conv.fused' second conv must read the first conv's result as its input

// -----

func.func @intermediate_twice(%x: tensor<1x2x6x6x8xf32>, %w1: tensor<16x1x3x3xf32>, %w3: tensor<16x16x1x1xf32>) -> tensor<1x2x6x6x8xf32> {
  %y = conv.fused %x, %w1, %w3 : (tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32>, tensor<16x16x1x1xf32>) -> tensor<1x2x6x6x8xf32> {
  ^bb0(%a: tensor<1x2x6x6x8xf32>, %wa: tensor<16x1x3x3xf32>, %wb: tensor<16x16x1x1xf32>):
    %t = conv.conv2d %a, %wa {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64} : tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32> -> tensor<1x2x6x6x8xf32>
    %o = conv.conv2d %t, %wb residual %t {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x6x6x8xf32>, tensor<16x16x1x1xf32> residual tensor<1x2x6x6x8xf32> -> tensor<1x2x6x6x8xf32>
    conv.yield %o : tensor<1x2x6x6x8xf32>
  }
  func.return %y : tensor<1x2x6x6x8xf32>
}
// CHECK: 'conv.fused' first conv's result must be used only by the second conv as input

// -----

func.func @first_residual(%x: tensor<1x2x6x6x8xf32>, %w1: tensor<16x1x3x3xf32>, %w2: tensor<8x16x1x1xf32>) -> tensor<1x1x6x6x8xf32> {
  %y = conv.fused %x, %w1, %w2 : (tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32>, tensor<8x16x1x1xf32>) -> tensor<1x1x6x6x8xf32> {
  ^bb0(%a: tensor<1x2x6x6x8xf32>, %wa: tensor<16x1x3x3xf32>, %wb: tensor<8x16x1x1xf32>):
    %t = conv.conv2d %a, %wa residual %a {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64} : tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32> residual tensor<1x2x6x6x8xf32> -> tensor<1x2x6x6x8xf32>
    %o = conv.conv2d %t, %wb {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x6x6x8xf32>, tensor<8x16x1x1xf32> -> tensor<1x1x6x6x8xf32>
    conv.yield %o : tensor<1x1x6x6x8xf32>
  }
  func.return %y : tensor<1x1x6x6x8xf32>
}
// CHECK: 'conv.fused' first conv must not have a residual (only the second may)

// -----

func.func @operand_type(%x: tensor<1x2x6x6x8xf32>, %w1: tensor<16x1x3x3xf32>, %w2: tensor<9x16x1x1xf32>) -> tensor<1x1x6x6x8xf32> {
  %y = "conv.fused"(%x, %w1, %w2) ({
  ^bb0(%a: tensor<1x2x6x6x8xf32>, %wa: tensor<16x1x3x3xf32>, %wb: tensor<8x16x1x1xf32>):
    %t = conv.conv2d %a, %wa {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64} : tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32> -> tensor<1x2x6x6x8xf32>
    %o = conv.conv2d %t, %wb {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x6x6x8xf32>, tensor<8x16x1x1xf32> -> tensor<1x1x6x6x8xf32>
    conv.yield %o : tensor<1x1x6x6x8xf32>
  }) : (tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32>, tensor<9x16x1x1xf32>) -> tensor<1x1x6x6x8xf32>
  func.return %y : tensor<1x1x6x6x8xf32>
}
// CHECK: 'conv.fused' block argument 2 has type tensor<8x16x1x1xf32>, operand tensor<9x16x1x1xf32>

// -----

func.func @result_type(%x: tensor<1x2x6x6x8xf32>, %w1: tensor<16x1x3x3xf32>, %w2: tensor<8x16x1x1xf32>) -> tensor<1x2x6x6x8xf32> {
  %y = "conv.fused"(%x, %w1, %w2) ({
  ^bb0(%a: tensor<1x2x6x6x8xf32>, %wa: tensor<16x1x3x3xf32>, %wb: tensor<8x16x1x1xf32>):
    %t = conv.conv2d %a, %wa {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64} : tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32> -> tensor<1x2x6x6x8xf32>
    %o = conv.conv2d %t, %wb {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x6x6x8xf32>, tensor<8x16x1x1xf32> -> tensor<1x1x6x6x8xf32>
    conv.yield %o : tensor<1x1x6x6x8xf32>
  }) : (tensor<1x2x6x6x8xf32>, tensor<16x1x3x3xf32>, tensor<8x16x1x1xf32>) -> tensor<1x2x6x6x8xf32>
  func.return %y : tensor<1x2x6x6x8xf32>
}
// CHECK: 'conv.fused' result type tensor<1x2x6x6x8xf32> differs from tensor<1x1x6x6x8xf32>
