"""What Triton makes of the fused kernel, read without a GPU: registers, occupancy, the loop.

    pip install triton   # its compiler with ptxas and cuobjdump; not a fractalsweep dependency
    python docs/scripts/fused_sass.py [--variant dtype:block,chunk,warps[,stages[,fma]]] ...
        [--tanh select|clamp|libdevice] [--arch 90]

For each variant (default: the kernel's own launch per dtype, then :data:`VARIANTS`), lowers
the fused kernel of the baseline tile (1000 steps) to Triton IR as fractalsweep does for a
GPU (Pallas' lowering, which assumes sm_90 where it sees no GPU), compiles that IR with the
``triton`` package for ``--arch``, and reads the machine code (SASS) with cuobjdump. Prints
the registers per thread, the programs and warps an SM holds at that many registers (an
H100's 65,536 registers, at most 64 warps and 32 programs), and the innermost loop that
holds a matrix-multiply instruction (the kernel's loop over data chunks): its instructions
per warp and chunk, those scaled to warp-instructions per network-step (x warps x chunks
per step / networks per program), and the commonest opcodes. ``--tanh`` compiles the
float64 tanh with the other clip of ``elementary.tanh64``, or as libdevice's (``jnp.tanh``).

The ``triton`` package's compiler is not the one inside jaxlib, so its code is like, not the
same as, what a GPU worker runs; and instruction counts are not times (docs/performance.md
compares them with the rates measured on GPUs). Uses JAX internals (the Pallas Triton
lowering's entry point) to catch the IR.
"""

import argparse
import dataclasses
import re
import subprocess
import tempfile
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import triton
from gpu_measure import _given_variants  # this folder's: the same --variant form
from jax._src.pallas.triton import lowering
from triton.backends.compiler import GPUTarget

from fractalsweep import bench, config, elementary, fused, kernel, streams

# Launches compiled after each dtype's own: fused.Launch's (block, chunk, warps, stages, fma)
VARIANTS = {"float64": ((2, 16, 4, 1, True), (2, 16, 4, None), (1, 16, 2, 1),
                        (1, 16, 2, 1, True), (4, 16, 8, 1), (4, 16, 8, 1, True),
                        (8, 16, 4, None), (4, 16, 4, None), (2, 16, 2, None)),
            "float32": ((8, 16, 2, None), (16, 16, 2, 1), (8, 16, 4, None))}
REGISTERS, MAX_WARPS, MAX_PROGRAMS = 65536, 64, 32  # per SM of an H100 (and an H200)
BIN = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"


def baseline(dtype: str):
    return config.resolve(config.apply_overrides(bench.BASELINE,
                                                 [f"dtype='{dtype}'", "training.steps=1000"]))


def caught_ir(lower) -> str:
    """The Triton IR Pallas makes while ``lower()`` lowers a kernel for a GPU."""
    caught = []
    original = lowering.lower_jaxpr_to_triton_module

    def catch(*args, **kwargs):
        result = original(*args, **kwargs)
        caught.append(result.module.operation.get_asm(enable_debug_info=False))
        return result

    lowering.lower_jaxpr_to_triton_module = catch
    try:
        lower()
    finally:
        lowering.lower_jaxpr_to_triton_module = original
    return caught[0]


def triton_ir(cfg, launch: fused.Launch) -> str:
    """The fused kernel's Triton IR for ``cfg``, as lowered for a GPU."""
    def lower():
        with jax.enable_x64(True):
            inputs = kernel.prepare(cfg, streams.draw(cfg))
            xs = jnp.ones(4 * launch.block, dtype)
            jax.jit(fused.make_run(cfg, interpret=False)).trace(xs, xs, *inputs).lower(
                lowering_platforms=("cuda",))

    dtype = cfg.dtype
    saved, fused.LAUNCH = fused.LAUNCH, {**fused.LAUNCH, dtype: launch}
    try:
        return caught_ir(lower)
    finally:
        fused.LAUNCH = saved


def sass(ir: str, launch: fused.Launch, arch: int) -> tuple[int, list[str]]:
    """Registers per thread and the SASS instructions of the IR compiled for ``arch``."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "kernel.ttir")
        source.write_text(ir)
        # no contraction of multiplies and adds: the code jaxlib's Triton made on an H100
        # had as many as this compile without it (docs/performance.md)
        options = {"num_warps": launch.warps, "num_stages": launch.stages or 3,
                   "enable_fp_fusion": False}
        binary = Path(tmp, "kernel.cubin")
        binary.write_bytes(triton.compile(str(source), target=GPUTarget("cuda", arch, 32),
                                          options=options).asm["cubin"])
        usage = subprocess.run([BIN / "cuobjdump", "--dump-resource-usage", binary],
                               capture_output=True, text=True, check=True).stdout
        code = subprocess.run([BIN / "cuobjdump", "-sass", binary],
                              capture_output=True, text=True, check=True).stdout
    registers = int(re.search(r"REG:(\d+)", usage).group(1))
    return registers, re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]+);", code)


def chunk_loop(instructions) -> list[str]:
    """The innermost loop (a backward branch's body) that holds a matrix-multiply."""
    where = {int(address, 16): i for i, (address, _) in enumerate(instructions)}
    loops = []
    for i, (_, text) in enumerate(instructions):
        target = re.search(r"\bBRA (?:\S+ )?0x([0-9a-f]+)", text)
        if target and int(target.group(1), 16) in where and where[int(target.group(1), 16)] < i:
            body = [t for _, t in instructions[where[int(target.group(1), 16)]:i + 1]]
            if any("MMA" in t for t in body):
                loops.append(body)
    return min(loops, key=len)


def opcode(text: str) -> str:
    return re.sub(r"^@!?U?P\w+\s+", "", text.strip()).split()[0].split(".")[0]


def row(dtype: str, launch: fused.Launch, arch: int) -> str:
    cfg = baseline(dtype)
    registers, instructions = sass(triton_ir(cfg, launch), launch, arch)
    loop = chunk_loop(instructions)
    allocated = -(-registers // 8) * 8
    programs = min(MAX_PROGRAMS, MAX_WARPS // launch.warps,
                   REGISTERS // (allocated * 32 * launch.warps))
    chunks = -(-cfg.n_data // launch.chunk)
    per_net_step = len(loop) * launch.warps * chunks / launch.block
    counts = {}
    for text in loop:
        counts[opcode(text)] = counts.get(opcode(text), 0) + 1
    common = " ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:8])
    name = (f"{dtype} ({launch.block}, {launch.chunk}, {launch.warps}, "
            f"{launch.stages or 'default'}{', fma' if launch.fma else ''})")
    return (f"| {name} | {registers} | {programs} / {programs * launch.warps} | {len(loop)} "
            f"| {per_net_step:,.0f} | {common} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=[],
                        help="dtype:block,chunk,warps[,stages[,fma]] (default: the kernel's own "
                             "and VARIANTS)")
    parser.add_argument("--tanh", choices=("select", "clamp", "libdevice"), default="select",
                        help="float64 tanh: elementary.tanh64 with this clip, or libdevice's")
    parser.add_argument("--arch", type=int, default=90)
    args = parser.parse_args()
    variants = _given_variants(args.variant) if args.variant else {
        dtype: [dataclasses.astuple(fused.LAUNCH[dtype]), *VARIANTS.get(dtype, ())]
        for dtype in fused.LAUNCH}
    chosen = [(dtype, fused.Launch(*v)) for dtype, vs in variants.items() for v in vs]
    own = {key: fn for key, fn in fused.OWN.items() if key != ("tanh", "float64")}
    if args.tanh != "libdevice":
        own[("tanh", "float64")] = partial(elementary.tanh64, clip=args.tanh)
    fused.OWN = own
    print(f"sm_{args.arch}, triton {triton.__version__}, float64 tanh: {args.tanh}")
    print("| dtype (block, chunk, warps, stages) | registers | programs / warps per SM "
          "| loop instructions per warp and chunk | warp-instructions per net-step "
          "| commonest in the loop |")
    print("|---|---|---|---|---|---|")
    for dtype, launch in chosen:
        print(row(dtype, launch, args.arch), flush=True)


if __name__ == "__main__":
    main()
