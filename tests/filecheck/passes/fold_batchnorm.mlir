// RUN: convir-opt %s -p conv-fold-batchnorm | filecheck %s

// A batchnorm after a single-use conv folds into it. With epsilon 0 and var 1, s = scale = [2, 3]:
// the weight (all ones) becomes [2, 3] and the bias (b - mean) * s + beta = [2, 5.5]. The conv
// keeps its other attributes; the batchnorm and the old constants are gone.

func.func @fold(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x1x1x1xf32>
  %b = conv.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %scale = conv.constant dense<[2.0, 3.0]> : tensor<2xf32>
  %beta = conv.constant dense<1.0> : tensor<2xf32>
  %mean = conv.constant dense<0.5> : tensor<2xf32>
  %var = conv.constant dense<1.0> : tensor<2xf32>
  %y = conv.conv2d %x, %w bias %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, algorithm = "direct"} : tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32> bias tensor<2xf32> -> tensor<1x2x4x4xf32>
  %z = conv.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 0.0 : f32} : tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32> -> tensor<1x2x4x4xf32>
  func.return %z : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @fold
// CHECK-NEXT:    %[[W:.*]] = conv.constant dense_resource<[[WBLOB:[^>]+]]> : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B:.*]] = conv.constant dense_resource<[[BBLOB:[^>]+]]> : tensor<2xf32>
// CHECK-NEXT:    %[[Y:.*]] = conv.conv2d %x, %[[W]] bias %[[B]] {{.*}}algorithm = "direct"}
// CHECK-NEXT:    func.return %[[Y]]

// Without a bias the conv gets one: (0 - mean) * s + beta.

func.func @fold_no_bias(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x1x1x1xf32>
  %scale = conv.constant dense<[2.0, 3.0]> : tensor<2xf32>
  %beta = conv.constant dense<1.0> : tensor<2xf32>
  %mean = conv.constant dense<0.5> : tensor<2xf32>
  %var = conv.constant dense<1.0> : tensor<2xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32> -> tensor<1x2x4x4xf32>
  %z = conv.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 0.0 : f32} : tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32> -> tensor<1x2x4x4xf32>
  func.return %z : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @fold_no_bias
// CHECK-NEXT:    %[[W:.*]] = conv.constant dense_resource<{{.*}}> : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B:.*]] = conv.constant dense_resource<[[NBBLOB:[^>]+]]> : tensor<2xf32>
// CHECK-NEXT:    %[[Y:.*]] = conv.conv2d %x, %[[W]] bias %[[B]]
// CHECK-NEXT:    func.return %[[Y]]

// Must not fold: the conv's result has a second user, so its weights must stay as they are.
// The batchnorm becomes a per-channel mul by s and add of beta - mean * s, shaped [C, 1, 1].

func.func @two_users(%x: tensor<1x1x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %w = conv.constant dense<1.0> : tensor<2x1x1x1xf32>
  %scale = conv.constant dense<[2.0, 3.0]> : tensor<2xf32>
  %beta = conv.constant dense<1.0> : tensor<2xf32>
  %mean = conv.constant dense<0.5> : tensor<2xf32>
  %var = conv.constant dense<1.0> : tensor<2xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32> -> tensor<1x2x4x4xf32>
  %z = conv.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 0.0 : f32} : tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32> -> tensor<1x2x4x4xf32>
  func.return %y, %z : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @two_users
// CHECK:         %[[W:.*]] = conv.constant dense<1.000000e+00> : tensor<2x1x1x1xf32>
// CHECK:         %[[Y:.*]] = conv.conv2d %x, %[[W]] {
// CHECK-NOT:     conv.batchnorm
// CHECK:         %[[S:.*]] = conv.constant dense_resource<[[SBLOB:[^>]+]]> : tensor<2x1x1xf32>
// CHECK-NEXT:    %[[T:.*]] = conv.constant dense_resource<[[TBLOB:[^>]+]]> : tensor<2x1x1xf32>
// CHECK-NEXT:    %[[M:.*]] = conv.binary %[[Y]], %[[S]] {kind = "mul"}
// CHECK-NEXT:    %[[A:.*]] = conv.binary %[[M]], %[[T]] {kind = "add"}
// CHECK-NEXT:    func.return %[[Y]], %[[A]]

// Must not fold: the input comes from a pool, not a conv.

func.func @after_pool(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %scale = conv.constant dense<[2.0, 3.0]> : tensor<2xf32>
  %beta = conv.constant dense<1.0> : tensor<2xf32>
  %mean = conv.constant dense<0.5> : tensor<2xf32>
  %var = conv.constant dense<1.0> : tensor<2xf32>
  %p = conv.pool %x {kind = "max", kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : tensor<1x2x4x4xf32> -> tensor<1x2x2x2xf32>
  %z = conv.batchnorm %p, %scale, %beta, %mean, %var {epsilon = 0.0 : f32} : tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32> -> tensor<1x2x2x2xf32>
  func.return %z : tensor<1x2x2x2xf32>
}

// CHECK-LABEL: func.func @after_pool
// CHECK:         %[[P:.*]] = conv.pool %x
// CHECK-NOT:     conv.batchnorm
// CHECK:         %[[M:.*]] = conv.binary %[[P]], %{{.*}} {kind = "mul"} : tensor<1x2x2x2xf32>, tensor<2x1x1xf32>
// CHECK-NEXT:    conv.binary %[[M]], %{{.*}} {kind = "add"} : tensor<1x2x2x2xf32>, tensor<2x1x1xf32>

// Must not fold: the conv already applies an activation (the batchnorm comes after it).

func.func @after_activation(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = conv.constant dense<1.0> : tensor<2x1x1x1xf32>
  %scale = conv.constant dense<[2.0, 3.0]> : tensor<2xf32>
  %beta = conv.constant dense<1.0> : tensor<2xf32>
  %mean = conv.constant dense<0.5> : tensor<2xf32>
  %var = conv.constant dense<1.0> : tensor<2xf32>
  %y = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu"} : tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32> -> tensor<1x2x4x4xf32>
  %z = conv.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 0.0 : f32} : tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32> -> tensor<1x2x4x4xf32>
  func.return %z : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @after_activation
// CHECK:         %[[W:.*]] = conv.constant dense<1.000000e+00> : tensor<2x1x1x1xf32>
// CHECK:         %[[Y:.*]] = conv.conv2d %x, %[[W]] {{.*}}activation = "relu"
// CHECK:         conv.binary %[[Y]], %{{.*}} {kind = "mul"}
// CHECK-NEXT:    conv.binary

// A rank-2 input gets parameters of shape [C].

func.func @rank2(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %scale = conv.constant dense<[2.0, 3.0]> : tensor<2xf32>
  %beta = conv.constant dense<1.0> : tensor<2xf32>
  %mean = conv.constant dense<0.5> : tensor<2xf32>
  %var = conv.constant dense<1.0> : tensor<2xf32>
  %z = conv.batchnorm %x, %scale, %beta, %mean, %var {epsilon = 0.0 : f32} : tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32> -> tensor<3x2xf32>
  func.return %z : tensor<3x2xf32>
}

// CHECK-LABEL: func.func @rank2
// CHECK:         conv.binary %x, %{{.*}} {kind = "mul"} : tensor<3x2xf32>, tensor<2xf32>
// CHECK-NEXT:    conv.binary %{{.*}}, %{{.*}} {kind = "add"} : tensor<3x2xf32>, tensor<2xf32>

// Left alone: a parameter is computed at run time.

func.func @computed_scale(%x: tensor<1x2x4x4xf32>, %scale: tensor<2xf32>) -> tensor<1x2x4x4xf32> {
  %beta = conv.constant dense<1.0> : tensor<2xf32>
  %mean = conv.constant dense<0.5> : tensor<2xf32>
  %var = conv.constant dense<1.0> : tensor<2xf32>
  %z = conv.batchnorm %x, %scale, %beta, %mean, %var {epsilon = 0.0 : f32} : tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32> -> tensor<1x2x4x4xf32>
  func.return %z : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @computed_scale
// CHECK:         conv.batchnorm %x, %scale
// CHECK-NOT:     conv.binary

// Folded values: weight [2, 3], bias [2, 5.5], bias without conv bias [0, -0.5];
// mul [2, 3] and add 1 - 0.5 * s = [0, -0.5].
// CHECK-DAG: [[WBLOB]]: "0x040000000000004000004040"
// CHECK-DAG: [[BBLOB]]: "0x04000000000000400000b040"
// CHECK-DAG: [[NBBLOB]]: "0x0400000000000000000000bf"
// CHECK-DAG: [[SBLOB]]: "0x040000000000004000004040"
// CHECK-DAG: [[TBLOB]]: "0x0400000000000000000000bf"
