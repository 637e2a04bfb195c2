#!/usr/bin/env python3
"""Runs .tflite models on TensorFlow Lite for Microcontrollers (the tflite-micro package,
reference kernels): the oracle of patchbench's differential tests.

usage: tflm-run.py CASE_DIR...

Each CASE_DIR holds model.tflite and input.bin (raw bytes in the input's type, NHWC order).
Writes output.bin (every graph output's raw bytes, in the graph's order) and every operator's
output as opNN.bin (raw bytes in its type, TFLite operator order, as `patchbench infer --dump`
names them); with a tensors.txt (TFLite tensor indices, one per line), writes those
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
    model = model_editor.read((case / "model.tflite").read_bytes())
    graph = model.subgraphs[0]
    details = interpreter.get_input_details(0)
    raw = (case / "input.bin").read_bytes()
    x = np.frombuffer(raw, dtype=details["dtype"]).reshape(details["shape"])
    interpreter.set_input(x, 0)
    interpreter.invoke()
    # Every graph output's raw bytes in its own type, one after another in the graph's order.
    outputs = b"".join(np.asarray(interpreter.get_output(k)).tobytes() for k in range(len(graph.outputs)))
    (case / "output.bin").write_bytes(outputs)

    def write(index: int, name: str) -> None:
        t = interpreter.GetTensor(index, 0)
        (case / name).write_bytes(np.asarray(t["tensor_data"]).tobytes())

    listed = case / "tensors.txt"
    if listed.exists():
        for line in listed.read_text().split():
            write(int(line), f"t{int(line)}.bin")
    else:
        for i, op in enumerate(graph.operators):
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
