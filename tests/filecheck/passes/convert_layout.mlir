// RUN: convir-opt %s -p 'conv-convert-layout{block=8},dce' | filecheck %s
// RUN: convir-opt %s -p 'conv-convert-layout{target=x86-avx512},dce' | filecheck %s --check-prefix=AVX512
// RUN: not convir-opt %s -p 'conv-convert-layout{block=-1}' 2>&1 | filecheck %s --check-prefix=BAD

// A conv chain through a per-channel scale and a pool: one pack at the input, one unpack at the
// return, the scale constant repacked, nothing converted back in between. At block 16 the
// 10-channel input is less than one block: the first conv reads it as NCHW, nothing is packed.
// CHECK-LABEL: func.func @chain
// CHECK:      %[[X:.*]] = conv.pack %x {block = 8 : i64} : tensor<1x10x8x8xf32> -> tensor<1x2x8x8x8xf32>
// CHECK:      %[[S:.*]] = conv.constant dense_resource<{{.*}}> : tensor<1x2x1x1x8xf32>
// CHECK:      %[[A:.*]] = conv.conv2d %[[X]], %w1 {{.*}} -> tensor<1x2x8x8x8xf32>
// CHECK-NEXT: %[[B:.*]] = conv.binary %[[A]], %[[S]] {kind = "mul"} {{.*}} -> tensor<1x2x8x8x8xf32>
// CHECK-NEXT: %[[P:.*]] = conv.pool %[[B]] {{.*}} -> tensor<1x2x4x4x8xf32>
// CHECK-NEXT: %[[C:.*]] = conv.conv2d %[[P]], %w2 {{.*}} -> tensor<1x2x4x4x8xf32>
// CHECK-NEXT: %[[U:.*]] = conv.unpack %[[C]] : tensor<1x2x4x4x8xf32> -> tensor<1x16x4x4xf32>
// CHECK-NEXT: func.return %[[U]]
// AVX512-LABEL: func.func @chain
// AVX512-NOT:   conv.pack
// AVX512:       conv.conv2d %x, %w1 {{.*}} : tensor<1x10x8x8xf32>, tensor<16x10x3x3xf32> -> tensor<1x1x8x8x16xf32>
// AVX512:       conv.unpack
// AVX512-NEXT:  func.return
func.func @chain(%x: tensor<1x10x8x8xf32>) -> tensor<1x16x4x4xf32> {
  %w1 = conv.constant dense<0.5> : tensor<16x10x3x3xf32>
  %w2 = conv.constant dense<0.25> : tensor<16x16x1x1xf32>
  %s = conv.constant dense<2.0> : tensor<16x1x1xf32>
  %a = conv.conv2d %x, %w1 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x10x8x8xf32>, tensor<16x10x3x3xf32> -> tensor<1x16x8x8xf32>
  %b = conv.binary %a, %s {kind = "mul"} : tensor<1x16x8x8xf32>, tensor<16x1x1xf32> -> tensor<1x16x8x8xf32>
  %p = conv.pool %b {kind = "max", kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : tensor<1x16x8x8xf32> -> tensor<1x16x4x4xf32>
  %c = conv.conv2d %p, %w2 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x4x4xf32>, tensor<16x16x1x1xf32> -> tensor<1x16x4x4xf32>
  func.return %c : tensor<1x16x4x4xf32>
}

// A conv output read both by an NCHW-only op (reshape) and an NCHWc one: one unpack for the
// reshape, one for the returned activation. 12 channels are padded to 2 blocks of 8.
// CHECK-LABEL: func.func @two_users
// CHECK:      %[[A:.*]] = conv.conv2d {{.*}} -> tensor<1x2x4x4x8xf32>
// CHECK-NEXT: %[[U:.*]] = conv.unpack %[[A]] : tensor<1x2x4x4x8xf32> -> tensor<1x12x4x4xf32>
// CHECK-NEXT: %[[R:.*]] = conv.activation %[[A]] {kind = "relu"} : tensor<1x2x4x4x8xf32>
// CHECK-NEXT: %[[UR:.*]] = conv.unpack %[[R]]
// CHECK-NEXT: %[[F:.*]] = conv.reshape %[[U]]
// CHECK-NEXT: func.return %[[F]], %[[UR]]
func.func @two_users(%x: tensor<1x3x4x4xf32>) -> (tensor<1x192xf32>, tensor<1x12x4x4xf32>) {
  %w = conv.constant dense<0.5> : tensor<12x3x1x1xf32>
  %a = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x4x4xf32>, tensor<12x3x1x1xf32> -> tensor<1x12x4x4xf32>
  %r = conv.activation %a {kind = "relu"} : tensor<1x12x4x4xf32> -> tensor<1x12x4x4xf32>
  %f = conv.reshape %a : tensor<1x12x4x4xf32> -> tensor<1x192xf32>
  func.return %f, %r : tensor<1x192xf32>, tensor<1x12x4x4xf32>
}

// Concat on channels stays NCHWc when every input but the last is whole blocks (8 + 12), and
// falls back to NCHW when one is not (12 + 8): lanes would have to move across blocks.
// CHECK-LABEL: func.func @concats
// CHECK:      %[[A:.*]] = conv.conv2d {{.*}} -> tensor<1x1x4x4x8xf32>
// CHECK-NEXT: %[[UA:.*]] = conv.unpack %[[A]]
// CHECK-NEXT: %[[B:.*]] = conv.conv2d {{.*}} -> tensor<1x2x4x4x8xf32>
// CHECK-NEXT: %[[UB:.*]] = conv.unpack %[[B]]
// CHECK-NEXT: conv.concat %[[A]], %[[B]] {axis = 1 : i64} : tensor<1x1x4x4x8xf32>, tensor<1x2x4x4x8xf32> -> tensor<1x3x4x4x8xf32>
// CHECK:      conv.concat %[[UB]], %[[UA]] {axis = 1 : i64} : tensor<1x12x4x4xf32>, tensor<1x8x4x4xf32> -> tensor<1x20x4x4xf32>
func.func @concats(%x: tensor<1x3x4x4xf32>) -> (tensor<1x20x4x4xf32>, tensor<1x20x4x4xf32>) {
  %w8 = conv.constant dense<0.5> : tensor<8x3x1x1xf32>
  %w12 = conv.constant dense<0.5> : tensor<12x3x1x1xf32>
  %a = conv.conv2d %x, %w8 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x4x4xf32>, tensor<8x3x1x1xf32> -> tensor<1x8x4x4xf32>
  %b = conv.conv2d %x, %w12 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x4x4xf32>, tensor<12x3x1x1xf32> -> tensor<1x12x4x4xf32>
  %ok = conv.concat %a, %b {axis = 1 : i64} : tensor<1x8x4x4xf32>, tensor<1x12x4x4xf32> -> tensor<1x20x4x4xf32>
  %no = conv.concat %b, %a {axis = 1 : i64} : tensor<1x12x4x4xf32>, tensor<1x8x4x4xf32> -> tensor<1x20x4x4xf32>
  func.return %ok, %no : tensor<1x20x4x4xf32>, tensor<1x20x4x4xf32>
}

// An unpack already in the IR cancels against the pack a conv would need; a grouped conv whose
// groups are not whole blocks (4 channels per group) stays NCHW.
// CHECK-LABEL: func.func @cancel_and_grouped
// CHECK-NOT:  conv.pack
// CHECK:      %[[A:.*]] = conv.conv2d %y, {{.*}} -> tensor<1x1x4x4x8xf32>
// CHECK-NEXT: %[[U:.*]] = conv.unpack %[[A]]
// CHECK-NEXT: conv.conv2d %[[U]], {{.*}} group = 2 : i64} : tensor<1x8x4x4xf32>
func.func @cancel_and_grouped(%y: tensor<1x1x4x4x8xf32>) -> tensor<1x8x4x4xf32> {
  %w = conv.constant dense<0.5> : tensor<8x8x1x1xf32>
  %wg = conv.constant dense<0.5> : tensor<8x4x1x1xf32>
  %x = conv.unpack %y : tensor<1x1x4x4x8xf32> -> tensor<1x8x4x4xf32>
  %a = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x8x4x4xf32>, tensor<8x8x1x1xf32> -> tensor<1x8x4x4xf32>
  %g = conv.conv2d %a, %wg {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 2 : i64} : tensor<1x8x4x4xf32>, tensor<8x4x1x1xf32> -> tensor<1x8x4x4xf32>
  func.return %g : tensor<1x8x4x4xf32>
}

// A per-channel constant whose data was elided from the printout cannot be repacked: the scale
// stays NCHW behind an unpack instead of failing the pass.
// CHECK-LABEL: func.func @elided_scale
// CHECK:      %[[A:.*]] = conv.conv2d {{.*}} -> tensor<1x1x4x4x8xf32>
// CHECK-NEXT: %[[U:.*]] = conv.unpack %[[A]]
// CHECK-NEXT: conv.binary %[[U]], %s {kind = "mul"} : tensor<1x8x4x4xf32>, tensor<8x1x1xf32>
func.func @elided_scale(%x: tensor<1x3x4x4xf32>) -> tensor<1x8x4x4xf32> {
  %w = conv.constant dense<0.5> : tensor<8x3x1x1xf32>
  %s = conv.constant dense_resource<elided_scale> : tensor<8x1x1xf32>
  %a = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x4x4xf32>, tensor<8x3x1x1xf32> -> tensor<1x8x4x4xf32>
  %b = conv.binary %a, %s {kind = "mul"} : tensor<1x8x4x4xf32>, tensor<8x1x1xf32> -> tensor<1x8x4x4xf32>
  func.return %b : tensor<1x8x4x4xf32>
}

// BAD: conv-convert-layout: option block must be >= 1, got -1

// The phases of a transposed conv: the interleave follows its NCHWc phase convs, and a phase that
// is a constant (a bias-only phase) is packed at compile time, not by a conv.pack at run time.
// CHECK-LABEL: func.func @interleave
// CHECK:      %[[K:.*]] = conv.constant dense_resource<{{.*}}> : tensor<1x2x4x3x8xf32>
// CHECK:      %[[A:.*]] = conv.conv2d {{.*}} -> tensor<1x2x4x4x8xf32>
// CHECK-NEXT: %[[I:.*]] = conv.interleave %[[A]], %[[K]] {strides = array<i64: 1, 2>} : tensor<1x2x4x4x8xf32>, tensor<1x2x4x3x8xf32> -> tensor<1x2x4x7x8xf32>
// CHECK-NEXT: %[[U:.*]] = conv.unpack %[[I]] : tensor<1x2x4x7x8xf32> -> tensor<1x16x4x7xf32>
// CHECK-NEXT: func.return %[[U]]
func.func @interleave(%x: tensor<1x16x4x4xf32>) -> tensor<1x16x4x7xf32> {
  %w = conv.constant dense<0.5> : tensor<16x16x1x1xf32>
  %k = conv.constant dense<1.0> : tensor<1x16x4x3xf32>
  %a = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x4x4xf32>, tensor<16x16x1x1xf32> -> tensor<1x16x4x4xf32>
  %i = conv.interleave %a, %k {strides = array<i64: 1, 2>} : tensor<1x16x4x4xf32>, tensor<1x16x4x3xf32> -> tensor<1x16x4x7xf32>
  func.return %i : tensor<1x16x4x7xf32>
}
