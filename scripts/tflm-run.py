#!/usr/bin/env python3
"""Runs .tflite models on TensorFlow Lite for Microcontrollers (the tflite-micro package,
reference kernels): the oracle of patchbench's differential tests.

usage: tflm-run.py CASE_DIR...

Each CASE_DIR holds model.tflite and input.bin (raw int8, NHWC order). Writes output.bin and
every operator's output as opNN.bin (raw int8, TFLite operator order, as `patchbench infer
--dump` names them); with a tensors.txt (TFLite tensor indices, one per line), writes those
tensors as tNN.bin instead. When TFLM refuses or fails on a model, writes error.txt instead
and goes on.
"""
import pathlib
import sys

import numpy as np
from tflite_micro.python.tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.compression import model_editor


def run(case: pathlib.Path) -> None:
    interpreter = runtime.Interpreter.from_file(
        str(case / "model.tflite"),
        # The default arena is sized from the file and too small for small models with
        # every tensor preserved (TFLM then crashes instead of failing).
        arena_size=16 * 1024 * 1024,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
    )
    details = interpreter.get_input_details(0)
    x = np.fromfile(case / "input.bin", dtype=np.int8).reshape(details["shape"])
    interpreter.set_input(x, 0)
    interpreter.invoke()
    np.asarray(interpreter.get_output(0), dtype=np.int8).tofile(case / "output.bin")

    def write(index: int, name: str) -> None:
        t = interpreter.GetTensor(index, 0)
        np.asarray(t["tensor_data"], dtype=np.int8).tofile(case / name)

    listed = case / "tensors.txt"
    if listed.exists():
        for line in listed.read_text().split():
            write(int(line), f"t{int(line)}.bin")
    else:
        model = model_editor.read((case / "model.tflite").read_bytes())
        for i, op in enumerate(model.subgraphs[0].operators):
            write(op.outputs[0].index, f"op{i:02d}.bin")


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    for arg in sys.argv[1:]:
        case = pathlib.Path(arg)
        try:
            run(case)
        except Exception as e:  # TFLM's refusals come as RuntimeError; keep going either way.
            (case / "error.txt").write_text(f"{type(e).__name__}: {e}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
