// RUN: convir-opt %s -p conv-fuse-epilogue | filecheck %s

// The end of a ResNet block, conv -> add shortcut -> relu, becomes one conv with a residual and
// an activation, built where the add was so that the shortcut dominates it.

func.func @residual_block(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x2x3x3xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32> -> tensor<1x2x4x4xf32>
  %shortcut = conv.pool %x {kind = "max", kernel = array<i64: 1, 1>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  %sum = conv.binary %y, %shortcut {kind = "add"} : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  %out = conv.activation %sum {kind = "relu"} : tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  func.return %out : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @residual_block
// CHECK:         %[[W:.*]] = conv.constant
// CHECK-NEXT:    %[[S:.*]] = conv.pool %x
// CHECK-NEXT:    %[[Y:.*]] = conv.conv2d %x, %[[W]] residual %[[S]] {{{.*}}activation = "relu"} : tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32> residual tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
// CHECK-NEXT:    func.return %[[Y]]

// Either operand order; the conv's bias stays.

func.func @residual_lhs(%x: tensor<1x2x4x4xf32>, %r: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x2x1x1xf32>
  %b = conv.constant dense<1.0> : tensor<2xf32>
  %y = conv.conv2d %x, %w bias %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> bias tensor<2xf32> -> tensor<1x2x4x4xf32>
  %sum = conv.binary %r, %y {kind = "add"} : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  func.return %sum : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @residual_lhs
// CHECK:         %[[B:.*]] = conv.constant dense<1.000000e+00> : tensor<2xf32>
// CHECK-NEXT:    %[[Y:.*]] = conv.conv2d %x, %{{[^ ]+}} bias %[[B]] residual %r {
// CHECK-NEXT:    func.return %[[Y]]

// An add of a per-channel constant goes into the bias: [1, 2] + [10, 20] = [11, 22].

func.func @constant_bias(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x2x1x1xf32>
  %b = conv.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %c = conv.constant dense<[[[10.0]], [[20.0]]]> : tensor<2x1x1xf32>
  %y = conv.conv2d %x, %w bias %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> bias tensor<2xf32> -> tensor<1x2x4x4xf32>
  %sum = conv.binary %y, %c {kind = "add"} : tensor<1x2x4x4xf32>, tensor<2x1x1xf32> -> tensor<1x2x4x4xf32>
  func.return %sum : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @constant_bias
// CHECK:         %[[B:.*]] = conv.constant dense_resource<[[BIAS:[^>]+]]> : tensor<2xf32>
// CHECK-NEXT:    %[[Y:.*]] = conv.conv2d %x, %{{[^ ]+}} bias %[[B]] {
// CHECK-NEXT:    func.return %[[Y]]

// A scalar-like constant [1] and no bias: the conv gets the bias [0.5, 0.5].

func.func @scalar_bias(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x2x1x1xf32>
  %c = conv.constant dense<0.5> : tensor<1xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> -> tensor<1x2x4x4xf32>
  %sum = conv.binary %c, %y {kind = "add"} : tensor<1xf32>, tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  func.return %sum : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @scalar_bias
// CHECK:         %[[B:.*]] = conv.constant dense_resource<[[HALF:[^>]+]]> : tensor<2xf32>
// CHECK-NEXT:    %[[Y:.*]] = conv.conv2d %x, %{{[^ ]+}} bias %[[B]] {
// CHECK-NEXT:    func.return %[[Y]]

// An activation's kind and parameters move onto the conv.

func.func @clip(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x2x1x1xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, algorithm = "direct"} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> -> tensor<1x2x4x4xf32>
  %out = conv.activation %y {kind = "clip", alpha = 0.0 : f32, beta = 6.0 : f32} : tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  func.return %out : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @clip
// CHECK:         %[[Y:.*]] = conv.conv2d %x, %{{[^ ]+}} {{{.*}}algorithm = "direct", activation = "clip", alpha = 0.000000e+00 : f32, beta = 6.000000e+00 : f32}
// CHECK-NEXT:    func.return %[[Y]]

// An identity activation is removed, which lets the relu behind it fuse.

func.func @identity(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x2x1x1xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> -> tensor<1x2x4x4xf32>
  %same = conv.activation %y {kind = "identity"} : tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  %out = conv.activation %same {kind = "relu"} : tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  func.return %out : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @identity
// CHECK:         %[[Y:.*]] = conv.conv2d %x, %{{[^ ]+}} {{{.*}}activation = "relu"}
// CHECK-NEXT:    func.return %[[Y]]

// Must not fuse: the conv's result has two users.

func.func @two_users(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %w = conv.constant dense<1.0> : tensor<2x2x1x1xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> -> tensor<1x2x4x4xf32>
  %out = conv.activation %y {kind = "relu"} : tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  func.return %y, %out : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @two_users
// CHECK:         %[[Y:.*]] = conv.conv2d %x, %{{[^ ]+}} {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64}
// CHECK-NEXT:    %[[R:.*]] = conv.activation %[[Y]] {kind = "relu"}
// CHECK-NEXT:    func.return %[[Y]], %[[R]]

// Must not fuse: relu(conv) + x adds after the activation, so the add is no residual.

func.func @add_after_relu(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x2x1x1xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> -> tensor<1x2x4x4xf32>
  %r = conv.activation %y {kind = "relu"} : tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  %sum = conv.binary %r, %x {kind = "add"} : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  func.return %sum : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @add_after_relu
// CHECK:         %[[Y:.*]] = conv.conv2d %x, %{{[^ ]+}} {{{.*}}activation = "relu"}
// CHECK-NEXT:    %[[S:.*]] = conv.binary %[[Y]], %x {kind = "add"}
// CHECK-NEXT:    func.return %[[S]]

// Must not fuse: the other operand is computed and broadcast, not of the conv's type.

func.func @broadcast_add(%x: tensor<1x2x4x4xf32>, %c: tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x2x1x1xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> -> tensor<1x2x4x4xf32>
  %sum = conv.binary %y, %c {kind = "add"} : tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32> -> tensor<1x2x4x4xf32>
  func.return %sum : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @broadcast_add
// CHECK:         %[[Y:.*]] = conv.conv2d %x, %{{[^ ]+}} {strides
// CHECK-NEXT:    conv.binary %[[Y]], %c {kind = "add"}

// Must not fuse: a constant that varies along the width is not a bias, and a second residual
// has no place on a conv that already has one.

func.func @not_per_channel(%x: tensor<1x2x4x4xf32>, %r: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x2x1x1xf32>
  %c = conv.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> -> tensor<1x2x4x4xf32>
  %sum = conv.binary %y, %c {kind = "add"} : tensor<1x2x4x4xf32>, tensor<4xf32> -> tensor<1x2x4x4xf32>
  %z = conv.conv2d %sum, %w residual %r {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32> residual tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  %out = conv.binary %z, %x {kind = "add"} : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32> -> tensor<1x2x4x4xf32>
  func.return %out : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @not_per_channel
// CHECK:         %[[C:.*]] = conv.constant dense<[1.0{{.*}}> : tensor<4xf32>
// CHECK-NEXT:    %[[Y:.*]] = conv.conv2d %x
// CHECK-NEXT:    %[[S:.*]] = conv.binary %[[Y]], %[[C]] {kind = "add"}
// CHECK-NEXT:    %[[Z:.*]] = conv.conv2d %[[S]], %{{[^ ]+}} residual %r
// CHECK-NEXT:    conv.binary %[[Z]], %x {kind = "add"}

// Fused biases: [11, 22] and [0.5, 0.5].
// CHECK-DAG: [[BIAS]]: "0x04000000000030410000b041"
// CHECK-DAG: [[HALF]]: "0x040000000000003f0000003f"
