// RUN: convir import %data/zoo_style_opset9.onnx | filecheck %s
// RUN: convir import %data/torch_resnet_mini_bn_opset17.onnx --batch 2 | filecheck %s --check-prefix=TORCH

// A model-zoo style opset-9 model: initializers listed as inputs are weights, not arguments;
// Dropout and the shape arithmetic fold away; Sum of three becomes two adds.
// CHECK: func.func @main(%{{.*}}: tensor<1x3x32x32xf32> {onnx.name = "data_0"}) -> (tensor<1x4x8xf32> {onnx.name = "prob_1"})
// CHECK-DAG: conv.lrn
// CHECK-DAG: conv.batchnorm
// CHECK-COUNT-2: conv.binary {{.*}}kind = "add"
// CHECK-NOT: Dropout
// CHECK: func.return

// A PyTorch opset-17 export with BatchNormalization kept, batch fixed at 2.
// TORCH: func.func @main(%input: tensor<2x3x64x64xf32> {onnx.name = "input"}) -> (tensor<2x10xf32> {onnx.name = "output"})
// Each conv is named in graph order and keeps its ONNX node name: the keys of per-conv overrides.
// TORCH: conv.conv2d %input, %{{.*}} {convir.name = "conv_0", onnx.name = "/conv1/Conv", strides = array<i64: 2, 2>, pads = array<i64: 3, 3, 3, 3>
// TORCH: conv.batchnorm
// TORCH: conv.pool {{.*}}kind = "max"
// TORCH: conv.conv2d {{.*}}{convir.name = "conv_1", onnx.name = "/layer1/conv1/Conv",
// TORCH: conv.global_pool {{.*}}kind = "avg"
// TORCH: conv.gemm {{.*}}trans_b
