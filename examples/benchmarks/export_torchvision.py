"""Export torchvision models as a new user would: opset 17, batch 1, random weights with
BatchNorm statistics calibrated on random data (two training-mode passes over random batches),
one `<name>.onnx` per model in OUT_DIR, for `torchvision_check.py` and `convir bench models`.

    python examples/benchmarks/export_torchvision.py OUT_DIR [name ...]
                                            (default: the 24 models of issue 12)

Needs torch and torchvision (a test-time tool, not a dependency of convir). inception_v3 is
exported at 299x299, the others at 224x224. A model already in OUT_DIR is not exported again.
"""

import argparse
import os

import torch
import torchvision

MODELS = [
    "resnet18",
    "resnet34",
    "resnet101",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "densenet121",
    "googlenet",
    "inception_v3",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "mnasnet1_0",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "shufflenet_v2_x1_0",
    "squeezenet1_0",
    "alexnet",
    "vgg11_bn",
    "convnext_tiny",
    "fcn_resnet50",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
]
SIZE = {"inception_v3": 299}


def export(name: str, out_dir: str) -> str:
    path = os.path.join(out_dir, f"{name}.onnx")
    if os.path.exists(path):
        return path
    torch.manual_seed(0)
    kwargs = (
        {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    )
    if name.startswith(("fcn_", "deeplabv3_")):
        kwargs = {"aux_loss": False, "weights_backbone": None}
    if name.startswith("lraspp_"):
        kwargs = {"weights_backbone": None}
    factory = getattr(torchvision.models, name, None) or getattr(
        torchvision.models.segmentation, name
    )
    model = factory(weights=None, **kwargs)
    size = SIZE.get(name, 224)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, size, size))
    model.eval()
    torch.onnx.export(
        model, torch.randn(1, 3, size, size), path + ".tmp", opset_version=17, dynamo=False
    )
    os.replace(path + ".tmp", path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder for the .onnx files")
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"models to export (default: {' '.join(MODELS)})"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; expected some of: {' '.join(MODELS)}")
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(1)
    for name in args.names or MODELS:
        try:
            print(name, export(name, args.out_dir), flush=True)
        except Exception as error:  # report and go on
            print(name, "FAILED", type(error).__name__, str(error)[:300], flush=True)


if __name__ == "__main__":
    main()
