"""Encoding frames: streamed one at a time to the ``ffmpeg`` binary shipped in the
``imageio-ffmpeg`` wheel (nothing but pip is needed on a fresh machine).

H.264, yuv420p and ``+faststart`` for ``.mp4`` / ``.mov`` / ``.mkv``, HEVC above the H.264
level 5.2 frame size (about 4K), and ``.gif`` through ffmpeg's palette filters. A file is
written under a temporary name and moved into place once ffmpeg has finished, so an
interrupted run never leaves a truncated video at the output path.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Iterable
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import AnimationError
from .files import written_whole

__all__ = ["ENCODERS", "MIN_SIDE", "VIDEO_SUFFIXES", "choose_codec", "encode"]

#: H.264 level 5.2 allows 36864 macroblocks per frame (4096 x 2304), the largest frame common
#: hardware decoders play; above it the automatic choice is HEVC.
H264_MAX_MACROBLOCKS = 36864
VIDEO_SUFFIXES = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: The smallest frame side an encoder takes, found with the bundled ffmpeg: x265 refuses 14
#: pixels, SVT-AV1 crashes at 8 (H.264 takes 2)
MIN_SIDE = {"hevc": 16, "av1": 10}
#: A full disk or quota, a file-size limit: the machine's refusals, not the request's
MACHINE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
ENCODERS = {"h264": ("libx264",), "hevc": ("libx265",), "av1": ("libsvtav1", "libaom-av1")}
_ENCODER_ARGS = {  # visually lossless for this content, the codecs' usual speed presets
    "libx264": ["-preset", "medium", "-crf", "18"],
    "libx265": ["-preset", "medium", "-crf", "20", "-tag:v", "hvc1",  # hvc1: plays on Apple
                "-x265-params", "log-level=error"],
    "libsvtav1": ["-preset", "8", "-crf", "30"],
    "libaom-av1": ["-cpu-used", "6", "-crf", "30", "-b:v", "0"],
}
# Convert with BT.709 and say so: players assume BT.709 for HD, so ffmpeg's untagged default
# (BT.601) would shift the colours slightly. setparams tags every frame, which reaches the
# stream header where the -color_* output options alone do not.
_COLOUR_ARGS = ["-vf", ("scale=out_color_matrix=bt709:out_range=tv,"
                        "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv")]
# One palette per frame: bounded memory however long the zoom (a global palette would make
# ffmpeg hold every frame), and a frame's own 256 colours follow the zoom's changing colours.
# Without -transdiff the encoder leaves pixels it takes for unchanged transparent, showing the
# frame before's colour: with a palette per frame some were wrong (a class drawn off-palette).
_GIF_ARGS = ["-vf", ("split[a][b];[a]palettegen=stats_mode=single[p];"
                     "[b][p]paletteuse=new=1:dither=bayer:bayer_scale=3"),
             "-gifflags", "-transdiff", "-loop", "0"]


def choose_codec(suffix: str, size: tuple[int, int], codec: str | None = None) -> str:
    """The codec for an output file: ``"gif"`` for ``.gif``, else ``codec`` or the automatic one.

    The automatic choice is H.264 up to H.264 level 5.2's frame size (36864 macroblocks,
    4096 x 2304), HEVC above it.

    Examples
    --------
    >>> choose_codec(".mp4", (512, 512)), choose_codec(".mp4", (4096, 4096))
    ('h264', 'hevc')
    """
    suffix = suffix.lower()
    if suffix == ".gif":
        if codec is not None:
            raise AnimationError(f"codec {codec!r} applies to video (.mp4, .mov, .mkv); a .gif "
                                 "has its own encoding: leave the codec out")
        return "gif"
    if suffix not in VIDEO_SUFFIXES:
        raise AnimationError(f"output must end in .gif or one of {', '.join(VIDEO_SUFFIXES)};"
                             f" got {suffix or 'no suffix'!r}")
    if codec is not None:
        if not isinstance(codec, str) or codec not in ENCODERS:
            raise AnimationError(f"codec {codec!r}: valid codecs are {', '.join(ENCODERS)}")
        return codec
    macroblocks = math.ceil(size[0] / 16) * math.ceil(size[1] / 16)
    return "h264" if macroblocks <= H264_MAX_MACROBLOCKS else "hevc"


@lru_cache(maxsize=1)
def _ffmpeg() -> tuple[str, frozenset[str]]:
    """The bundled ffmpeg executable and the names of its encoders."""
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    listing = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True,
                             text=True, check=True).stdout
    table = listing.split("------", 1)[-1]  # encoder rows follow the legend's dashed line
    return exe, frozenset(row.split()[1] for row in table.splitlines() if len(row.split()) > 1)


def _encoder(codec: str) -> str:
    exe, available = _ffmpeg()
    for name in ENCODERS[codec]:
        if name in available:
            return name
    raise AnimationError(f"the bundled ffmpeg ({exe}) has no {codec} encoder "
                         f"({' or '.join(ENCODERS[codec])}); choose another codec")


def _ffmpeg_command(path: str, suffix: str, codec: str, size, fps) -> list[str]:
    exe, _ = _ffmpeg()
    rate = str(Fraction(fps).limit_denominator(1001))
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}", "-framerate", rate, "-i", "-",
           "-an"]
    if codec == "gif":
        return cmd + _GIF_ARGS + ["-f", "gif", path]
    encoder = _encoder(codec)
    # +faststart moves the index to the front (playable while downloading); MP4 and MOV only.
    faststart = [] if suffix == ".mkv" else ["-movflags", "+faststart"]
    return cmd + _COLOUR_ARGS + ["-c:v", encoder, *_ENCODER_ARGS[encoder], "-pix_fmt", "yuv420p",
                                 *faststart, "-f", VIDEO_SUFFIXES[suffix], path]


def _failure(returncode: int, log: str, out: Path) -> Exception:
    """Why ffmpeg failed, from its exit status and error output: what the machine refused (a
    full disk, a file-size limit, which kills ffmpeg with SIGXFSZ) as the OSError Python
    raises for its own files, anything else as an :class:`AnimationError`."""
    refused = [code for code in MACHINE_ERRNOS if os.strerror(code) in log]
    if returncode == -signal.SIGXFSZ or refused:
        code = refused[0] if refused else errno.EFBIG
        return OSError(code, os.strerror(code), str(out))
    # The first line past the encoder's own chatter ("Svt[info]: ...") names the cause, the
    # rest is ffmpeg unwinding; its "[x265 @ 0x..]" prefixes are dropped
    lines = [line for line in log.strip().splitlines()
             if not re.match(r"\w+\[(info|warn)\]", line)]
    cause = re.sub(r"^(\w*\[[^]]*\]:? ?)+", "", lines[0]) if lines else "no message"
    how = f"exit {returncode}"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            how = f"killed by {signal.Signals(-returncode).name}"
    return AnimationError(f"ffmpeg failed ({how}) writing {out}: {cause}")


def encode(frames: Iterable[np.ndarray], out: Path, size: tuple[int, int], fps, codec: str,
           total: int, progress: bool = True) -> None:
    """Write ``frames`` (uint8, height x width x 3, row 0 at the top) to ``out`` with ffmpeg.

    ``codec`` is one of :data:`ENCODERS` or ``"gif"`` (see :func:`choose_codec`); ``total``
    is the number of frames, for the progress bar. Nothing is left at ``out`` if encoding
    fails or is interrupted.

    Raises
    ------
    AnimationError
        If ffmpeg fails; its first line of error output is in the message.
    OSError
        If the machine refused the file (:data:`MACHINE_ERRNOS`).
    """
    from .progress import TileProgress

    bar = TileProgress(total, 0, enabled=progress, unit="frame")
    with tempfile.TemporaryFile() as log, written_whole(out) as partial:
        cmd = _ffmpeg_command(str(partial), out.suffix.lower(), codec, size, fps)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        try:
            try:
                for frame in frames:
                    proc.stdin.write(frame)
                    bar.update()
            except BrokenPipeError:
                pass  # ffmpeg stopped early; its exit status and log say why, below
            finally:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()  # end of input: ffmpeg finishes the file
            if proc.wait() != 0:
                log.seek(0)
                raise _failure(proc.returncode, log.read().decode(errors="replace"), out)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        finally:
            bar.close()
