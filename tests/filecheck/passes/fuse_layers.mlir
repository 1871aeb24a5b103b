// RUN: convir-opt %s -p 'conv-fuse-layers{mode=all pairs="dw3x3_1x1,3x3_1x1,3x3_3x3" target=x86-avx2}' | filecheck %s
// RUN: convir-opt %s -p 'conv-fuse-layers{mode=all pairs=3x3_1x1 target=x86-avx2}' | filecheck %s --check-prefix=PAIRS
// RUN: convir-opt %s -p 'conv-fuse-layers{target=x86-avx2}' | filecheck %s --check-prefix=AUTO
// RUN: convir-opt %s -p 'conv-fuse-layers{mode=none}' | filecheck %s --check-prefix=NONE
// RUN: not convir-opt %s -p 'conv-fuse-layers{mode=sometimes}' 2>&1 | filecheck %s --check-prefix=BADMODE
// RUN: not convir-opt %s -p 'conv-fuse-layers{pairs=dw5x5_1x1}' 2>&1 | filecheck %s --check-prefix=BADPAIRS

// The three chain types fire with mode=all; a first conv with two users, a second conv with
// stride 2 or dilation 2, and a chain through a concat do not.

// CHECK-LABEL: func.func @dw_pw
// CHECK: %[[Y:.*]] = conv.fused %{{.*}} {convir.name = "dw+pw", algorithm = "fused", schedule = {tile_rows = {{[0-9]+}} : i64, ow_block
// CHECK: conv.conv2d {{.*}}group = 16 : i64
// CHECK-NEXT: conv.conv2d {{.*}}residual
// CHECK-NEXT: conv.yield
// CHECK: func.return %[[Y]]
// PAIRS-LABEL: func.func @dw_pw
// PAIRS-NOT: conv.fused
// AUTO-LABEL: func.func @dw_pw
// AUTO: conv.fused
// NONE-NOT: conv.fused
func.func @dw_pw(%x: tensor<1x2x28x28x8xf32>, %r: tensor<1x1x28x28x8xf32>) -> tensor<1x1x28x28x8xf32> {
  %w1 = conv.constant dense<0.5> : tensor<16x1x3x3xf32>
  %b1 = conv.constant dense<0.1> : tensor<16xf32>
  %w2 = conv.constant dense<0.25> : tensor<8x16x1x1xf32>
  %t = conv.conv2d %x, %w1 bias %b1 {convir.name = "dw", strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64, activation = "relu"} : tensor<1x2x28x28x8xf32>, tensor<16x1x3x3xf32> bias tensor<16xf32> -> tensor<1x2x28x28x8xf32>
  %o = conv.conv2d %t, %w2 residual %r {convir.name = "pw", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x28x28x8xf32>, tensor<8x16x1x1xf32> residual tensor<1x1x28x28x8xf32> -> tensor<1x1x28x28x8xf32>
  func.return %o : tensor<1x1x28x28x8xf32>
}

// Dense 3×3 then 1×1, and dense 3×3 then 3×3 (no emitter yet: fused only when named in pairs,
// without a schedule, and never by auto).
// CHECK-LABEL: func.func @dense_chains
// CHECK: conv.fused
// CHECK-NOT: schedule
// CHECK-SAME: -> tensor<1x1x28x28x8xf32>
// CHECK: conv.fused
// CHECK-SAME: -> tensor<1x2x28x28x8xf32>
// PAIRS-LABEL: func.func @dense_chains
// PAIRS: conv.fused
// PAIRS-SAME: -> tensor<1x1x28x28x8xf32>
// PAIRS-NOT: conv.fused
// AUTO-LABEL: func.func @dense_chains
// AUTO-NOT: conv.fused
func.func @dense_chains(%x: tensor<1x2x28x28x8xf32>) -> (tensor<1x1x28x28x8xf32>, tensor<1x2x28x28x8xf32>) {
  %w3 = conv.constant dense<0.5> : tensor<16x16x3x3xf32>
  %w2 = conv.constant dense<0.25> : tensor<8x16x1x1xf32>
  %a = conv.conv2d %x, %w3 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x28x28x8xf32>, tensor<16x16x3x3xf32> -> tensor<1x2x28x28x8xf32>
  %b = conv.conv2d %a, %w2 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x28x28x8xf32>, tensor<8x16x1x1xf32> -> tensor<1x1x28x28x8xf32>
  %c = conv.conv2d %x, %w3 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x28x28x8xf32>, tensor<16x16x3x3xf32> -> tensor<1x2x28x28x8xf32>
  %d = conv.conv2d %c, %w3 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu"} : tensor<1x2x28x28x8xf32>, tensor<16x16x3x3xf32> -> tensor<1x2x28x28x8xf32>
  func.return %b, %d : tensor<1x1x28x28x8xf32>, tensor<1x2x28x28x8xf32>
}

// CHECK-LABEL: func.func @not_fused
// CHECK-NOT: conv.fused
func.func @not_fused(%x: tensor<1x2x28x28x8xf32>) -> (tensor<1x1x28x28x8xf32>, tensor<1x2x28x28x8xf32>, tensor<1x1x14x14x8xf32>, tensor<1x2x24x24x8xf32>, tensor<1x1x28x28x8xf32>) {
  %w1 = conv.constant dense<0.5> : tensor<16x1x3x3xf32>
  %w2 = conv.constant dense<0.25> : tensor<8x16x1x1xf32>
  %w3 = conv.constant dense<0.5> : tensor<16x16x3x3xf32>
  %wc = conv.constant dense<0.25> : tensor<8x32x1x1xf32>
  // Two users of the first conv's result.
  %t = conv.conv2d %x, %w1 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64} : tensor<1x2x28x28x8xf32>, tensor<16x1x3x3xf32> -> tensor<1x2x28x28x8xf32>
  %o = conv.conv2d %t, %w2 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x28x28x8xf32>, tensor<8x16x1x1xf32> -> tensor<1x1x28x28x8xf32>
  // Second conv with stride 2, and with dilation 2.
  %s = conv.conv2d %x, %w1 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64} : tensor<1x2x28x28x8xf32>, tensor<16x1x3x3xf32> -> tensor<1x2x28x28x8xf32>
  %s2 = conv.conv2d %s, %w2 {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x28x28x8xf32>, tensor<8x16x1x1xf32> -> tensor<1x1x14x14x8xf32>
  %e = conv.conv2d %x, %w3 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x28x28x8xf32>, tensor<16x16x3x3xf32> -> tensor<1x2x28x28x8xf32>
  %e2 = conv.conv2d %e, %w3 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 2, 2>, group = 1 : i64} : tensor<1x2x28x28x8xf32>, tensor<16x16x3x3xf32> -> tensor<1x2x24x24x8xf32>
  // A chain through a concat.
  %u = conv.conv2d %x, %w1 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64} : tensor<1x2x28x28x8xf32>, tensor<16x1x3x3xf32> -> tensor<1x2x28x28x8xf32>
  %cat = conv.concat %u, %x {axis = 1 : i64} : tensor<1x2x28x28x8xf32>, tensor<1x2x28x28x8xf32> -> tensor<1x4x28x28x8xf32>
  %v = conv.conv2d %cat, %wc {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x28x28x8xf32>, tensor<8x32x1x1xf32> -> tensor<1x1x28x28x8xf32>
  func.return %o, %t, %s2, %e2, %v : tensor<1x1x28x28x8xf32>, tensor<1x2x28x28x8xf32>, tensor<1x1x14x14x8xf32>, tensor<1x2x24x24x8xf32>, tensor<1x1x28x28x8xf32>
}

// BADMODE: conv-fuse-layers: option mode: unknown mode 'sometimes'; expected one of auto, all, none
// BADPAIRS: conv-fuse-layers: option pairs: unknown chain type 'dw5x5_1x1'; expected a comma-separated subset of dw3x3_1x1, 3x3_1x1, 3x3_3x3
