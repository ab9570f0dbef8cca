"""``zoo export``: a model as ONNX or a `torch.export` program, with its serving files and a parity check.

    zoo export resnet18 --format onnx --out exported/resnet18
    zoo export my-model/ --format onnx --out exported/my-model --quantize int8 --data val/
"""
from __future__ import annotations

import argparse

from .options import Subcommands, positive_int

FORMATS = ("onnx", "exported-program")  # zoo.exports.FORMATS, without importing torch to build the parser


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("export", help="export a model to ONNX or a torch.export program, checked against PyTorch",
                       description="Export MODEL with example inputs from its card (the batch free; the sequence "
                                   "free for text and audio), write serving.json (preprocessing, inputs, labels) "
                                   "and a text model's tokenizer beside it, and compare the exported model's "
                                   "outputs with eager PyTorch.")
    p.add_argument("model", metavar="NAME_OR_DIR", help="a model name or a saved model's directory")
    p.add_argument("--format", choices=FORMATS, default="onnx",
                   help="onnx (checked through onnxruntime) or exported-program (torch.export.save, checked "
                        "through torch.export.load); default: %(default)s")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write to")
    p.add_argument("--quantize", choices=("int8",),
                   help="also write model.int8.onnx (onnxruntime dynamic quantization, for CPUs) and print the "
                        "accuracy change on --data, or the output difference on the example inputs without it")
    p.add_argument("--data", metavar="PATH",
                   help="labelled data (as zoo evaluate reads it) to measure the quantized model's accuracy on")
    p.add_argument("--batch", type=positive_int, default=2, help="batch of the example inputs (default: 2)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ..exports import export  # reason: imports torch and the exporters, only once the command runs
    from .loading import load_model

    model = load_model(args.model)
    result = export(model, args.out, format=args.format, quantize=args.quantize, data=args.data, batch=args.batch)
    print(result)
    if not result.ok:
        print("zoo: the exported model's outputs differ from PyTorch's beyond the tolerance", flush=True)
        return 1
    return 0
