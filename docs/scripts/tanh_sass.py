"""The fused kernel's float64 tanh alone in machine code, read without a GPU: per element.

    pip install triton   # as for fused_sass.py
    python docs/scripts/tanh_sass.py [--arch 90]

Lowers a Pallas kernel that only applies one tanh to 1024 float64 values (4 warps, 8 values
per thread) as fractalsweep lowers for a GPU, compiles it as ``fused_sass.py`` does
(``triton``'s compiler, no contraction of multiplies and adds, like jaxlib's) and counts the
float64 instructions per element, for the CPU's form of ``elementary.tanh64`` (what the
fused kernel runs with ``Launch.fma`` off), the GPU's form (``fma`` on) and libdevice's
``tanh``. The counts include the kernel's few float64 instructions around the tanh.
"""

import argparse
from collections import Counter
from functools import partial

import jax
import jax.numpy as jnp
from fused_sass import caught_ir, opcode, sass  # this folder's
from jax.experimental import pallas as pl

from fractalsweep import elementary, fused

SIZE, WARPS = 1024, 4
FLOAT64 = ("DADD", "DMUL", "DFMA", "DSETP", "FRND")
FORMS = {"CPU's form (fma off)": partial(elementary.tanh64, clip="select"),
         "GPU's form (fma on)": fused.activation("tanh", "float64", fma=True).fn,
         "libdevice's tanh": jnp.tanh}


def triton_ir(fn) -> str:
    """Triton IR of a kernel applying ``fn`` to SIZE float64 values, as lowered for a GPU."""
    def body(x_ref, out_ref):
        out_ref[...] = fn(x_ref[...])

    def call(x):
        return pl.pallas_call(body, out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype),
                              compiler_params=fused.pltriton.CompilerParams(num_warps=WARPS))(x)

    def lower():
        with jax.enable_x64(True):
            jax.jit(call).trace(jnp.ones(SIZE)).lower(lowering_platforms=("cuda",))

    return caught_ir(lower)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90)
    args = parser.parse_args()
    per_thread = SIZE / (WARPS * 32)
    print("| tanh | float64 instructions per element | of them | all instructions per element |")
    print("|---|---|---|---|")
    for name, fn in FORMS.items():
        _, instructions = sass(triton_ir(fn), fused.Launch(block=1, chunk=16, warps=WARPS),
                               args.arch)
        counts = Counter(opcode(text) for _, text in instructions)
        float64 = sum(counts[op] for op in FLOAT64) / per_thread
        detail = ", ".join(f"{op} {counts[op] / per_thread:g}" for op in FLOAT64)
        print(f"| {name} | {float64:g} | {detail} | {len(instructions) / per_thread:g} |")


if __name__ == "__main__":
    main()
