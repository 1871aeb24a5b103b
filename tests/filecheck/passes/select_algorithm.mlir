// RUN: convir-opt %s -p 'conv-select-algorithm{target=x86-avx2}' | filecheck %s
// RUN: convir-opt %s -p 'conv-select-algorithm{algorithm="conv_0=direct,/blocks/pinned=direct"}' | filecheck %s --check-prefix=FORCE
// RUN: convir-opt %s -p 'conv-select-algorithm{algorithm="all=direct"}' | filecheck %s --check-prefix=ALL
// RUN: not convir-opt %s -p 'conv-select-algorithm{algorithm="conv_9=direct"}' 2>&1 | filecheck %s --check-prefix=NOCONV
// RUN: not convir-opt %s -p 'conv-select-algorithm{algorithm="conv_0=fft"}' 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not convir-opt %s -p 'conv-select-algorithm{algorithm="conv_2=depthwise"}' 2>&1 | filecheck %s --check-prefix=NOTAPPLY
// RUN: not convir-opt %s -p 'conv-select-algorithm{algorithm="conv_0"}' 2>&1 | filecheck %s --check-prefix=MALFORMED
// RUN: not convir-opt %s -p 'conv-select-algorithm{target=sparc}' 2>&1 | filecheck %s --check-prefix=TARGET
// RUN: convir-opt %s -p 'conv-select-algorithm{target=x86-avx2 winograd-tolerance=1e-6}' | filecheck %s --check-prefix=TOL
// RUN: convir-opt %s -p 'conv-select-algorithm{target=x86-avx2 winograd-tolerance=0}' | filecheck %s --check-prefix=NOWINO
// RUN: not convir-opt %s -p 'conv-select-algorithm{winograd-tolerance=high}' 2>&1 | filecheck %s --check-prefix=BADTOL
// RUN: convir-opt %s -p 'conv-select-algorithm{target=x86-avx2 algorithm="conv_2=direct"}' | filecheck %s --check-prefix=CHOICE
// RUN: not convir-opt %s -p 'conv-select-algorithm{tuning-db="/nonexistent/t.sqlite"}' 2>&1 | filecheck %s --check-prefix=NODB
// RUN: convir-opt %s -p 'conv-select-algorithm{workspace-budget=64KiB}' | filecheck %s --check-prefix=BUDGET
// RUN: not convir-opt %s -p 'conv-select-algorithm{workspace-budget=lots}' 2>&1 | filecheck %s --check-prefix=BADBUDGET

// Three convs: two depthwise on NCHWc with a block of 1 (where both depthwise and direct apply),
// one of them pinned to depthwise with a schedule, and a dense conv on NCHW. Unnamed convs are
// named conv_<i> in module order; the pass sets `algorithm` and writes no schedule.

func.func @blocked(%x: tensor<1x4x6x6x1xf32>) -> tensor<1x4x6x6x1xf32> {
  %w = conv.constant dense<0.5> : tensor<4x1x3x3xf32>
  %a = conv.conv2d %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 4 : i64} : tensor<1x4x6x6x1xf32>, tensor<4x1x3x3xf32> -> tensor<1x4x6x6x1xf32>
  %b = conv.conv2d %a, %w {onnx.name = "/blocks/pinned", strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 4 : i64, algorithm = "depthwise", schedule = {ow_block = 2 : i64}} : tensor<1x4x6x6x1xf32>, tensor<4x1x3x3xf32> -> tensor<1x4x6x6x1xf32>
  func.return %b : tensor<1x4x6x6x1xf32>
}

func.func @plain(%y: tensor<1x16x6x6xf32>) -> tensor<1x16x6x6xf32> {
  %w = conv.constant dense<0.25> : tensor<16x16x3x3xf32>
  %c = conv.conv2d %y, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x6x6xf32>, tensor<16x16x3x3xf32> -> tensor<1x16x6x6xf32>
  func.return %c : tensor<1x16x6x6xf32>
}

// A 3×3 stride-1 conv with 64 channels in and out on NCHWc: the measured rule picks winograd
// while some m is within the tolerance (F(2,3)'s 7.1e-7 is within 1e-6), else the next choice.
func.func @deep(%z: tensor<1x8x14x14x8xf32>) -> tensor<1x8x14x14x8xf32> {
  %w = conv.constant dense<0.125> : tensor<64x64x3x3xf32>
  %d = conv.conv2d %z, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x8x14x14x8xf32>, tensor<64x64x3x3xf32> -> tensor<1x8x14x14x8xf32>
  func.return %d : tensor<1x8x14x14x8xf32>
}

// The heuristic picks depthwise for the depthwise conv; the pinned algorithm and schedule stay;
// the dense conv gets direct.
// CHECK-LABEL: func.func @blocked
// CHECK:       conv.conv2d %x, %w {convir.name = "conv_0", {{.*}}, algorithm = "depthwise"} :
// CHECK:       conv.conv2d %a, %w {convir.name = "conv_1", onnx.name = "/blocks/pinned", {{.*}}, algorithm = "depthwise", schedule = {ow_block = 2 : i64}} :
// CHECK-LABEL: func.func @plain
// CHECK:       conv.conv2d %y, %w {convir.name = "conv_2", {{.*}}, algorithm = "direct"} :
// CHECK-LABEL: func.func @deep
// CHECK:       conv.conv2d %z, %w {convir.name = "conv_3", {{.*}}, algorithm = "winograd"} :
// TOL:         conv.conv2d %z, %w {convir.name = "conv_3", {{.*}}, algorithm = "winograd"} :
// (With Winograd ruled out, the AVX2 heuristic takes im2win for this 3x3 group-1 NCHWc conv.)
// NOWINO:      conv.conv2d %z, %w {convir.name = "conv_3", {{.*}}, algorithm = "im2win"} :

// Overrides by convir.name and by onnx.name; overriding a pinned algorithm drops its schedule.
// FORCE:       conv.conv2d %x, %w {convir.name = "conv_0", {{.*}}, algorithm = "direct"} :
// FORCE:       conv.conv2d %a, %w {convir.name = "conv_1", {{.*}}, algorithm = "direct"} :
// FORCE:       conv.conv2d %y, %w {convir.name = "conv_2", {{.*}}, algorithm = "direct"} :

// `all` applies where the algorithm does and never overrides a pinned algorithm.
// ALL:         conv.conv2d %x, %w {convir.name = "conv_0", {{.*}}, algorithm = "direct"} :
// ALL:         conv.conv2d %a, %w {{.*}}, algorithm = "depthwise", schedule = {ow_block = 2 : i64}} :
// ALL:         conv.conv2d %y, %w {convir.name = "conv_2", {{.*}}, algorithm = "direct"} :

// NOCONV: convir-opt: error: conv-select-algorithm: algorithm 'conv_9=direct': no conv is named 'conv_9'; expected conv_0, conv_1, conv_2, conv_3 or a conv's onnx.name, as printed on each conv.conv2d by `convir compile MODEL --emit scheduled`
// UNKNOWN: convir-opt: error: conv-select-algorithm: algorithm 'conv_0=fft': unknown algorithm 'fft'; expected one of {{.*}}direct
// NOTAPPLY: convir-opt: error: conv-select-algorithm: conv_2 ('conv.conv2d'): algorithm 'depthwise' (forced by algorithm 'conv_2=depthwise') does not apply to this conv; applicable: direct
// MALFORMED: convir-opt: error: conv-select-algorithm: option algorithm: 'conv_0' is not CONV=ALGORITHM (e.g. conv_3=im2col)
// TARGET: convir-opt: error: conv-select-algorithm: option target: unknown target preset 'sparc'
// BADTOL: convir-opt: error: conv-select-algorithm: option winograd-tolerance: expected a finite number >= 0 (a relative error, e.g. 1e-4; 0 selects winograd nowhere), got 'high'

// Every conv says where its choice came from: the heuristic, a pin in the IR, an option.
// CHOICE: conv.conv2d %x, %w {convir.name = "conv_0", convir.choice = "heuristic"
// CHOICE: conv.conv2d %a, %w {convir.name = "conv_1", onnx.name = "/blocks/pinned", convir.choice = "pinned"
// CHOICE: conv.conv2d %y, %w {convir.name = "conv_2", convir.choice = "option"

// NODB: convir-opt: error: conv-select-algorithm: option tuning-db: no tuning database at '/nonexistent/t.sqlite'

// Within a budget, the algorithms that need no workspace are kept as the heuristic ranks them.
// BUDGET:      conv.conv2d %x, %w {convir.name = "conv_0", {{.*}}, algorithm = "depthwise"} :
// BUDGET:      conv.conv2d %y, %w {convir.name = "conv_2", {{.*}}, algorithm = "direct"} :
// BADBUDGET: convir-opt: error: conv-select-algorithm: option workspace-budget: 'lots' is not a byte count; expected an integer with an optional suffix B, KiB, MiB or GiB (e.g. 65536, 64KiB, 1MiB)
