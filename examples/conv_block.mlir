// A conv + ReLU + max-pool block written by hand in the conv dialect.
// Try: convir-opt examples/conv_block.mlir
//      convir-opt examples/conv_block.mlir --print-op-generic
// The weight is a dense_resource handle; `convir import --keep-weights` shows how blobs are stored.

func.func @main(%input: tensor<1x3x32x32xf32>) -> tensor<1x16x16x16xf32> {
  %w = conv.constant dense<0.01> : tensor<16x3x3x3xf32>
  %b = conv.constant dense<0.0> : tensor<16xf32>
  %conv = conv.conv2d %input, %w bias %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x32x32xf32>, tensor<16x3x3x3xf32> bias tensor<16xf32> -> tensor<1x16x32x32xf32>
  %relu = conv.activation %conv {kind = "relu"} : tensor<1x16x32x32xf32> -> tensor<1x16x32x32xf32>
  %pool = conv.pool %relu {kind = "max", kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : tensor<1x16x32x32xf32> -> tensor<1x16x16x16xf32>
  func.return %pool : tensor<1x16x16x16xf32>
}
