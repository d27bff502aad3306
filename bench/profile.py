"""Optional sampling profiles of the services during a scenario (py-spy, when installed)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path

from bench.procs import Proc


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter or on PATH (not a project dependency)."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(
    procs: list[Proc], *, seconds: float, directory: Path, scenario: str
) -> list[Path]:
    """Sample each process for `seconds` into `<scenario>-<process>.txt` (collapsed stacks)."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    outputs, children = [], []
    for proc in procs:
        out = directory / f"{scenario}-{proc.name}.txt"
        children.append(
            await asyncio.create_subprocess_exec(
                exe, "record", "--pid", str(proc.pid), "--duration", str(int(seconds)),
                "--rate", "200", "--format", "raw", "--nonblocking", "--output", str(out),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
        )  # fmt: skip
        outputs.append(out)
    await asyncio.gather(*(child.wait() for child in children))
    return outputs


def top_frames(path: Path, count: int = 12) -> list[tuple[float, float, str]]:
    """The hottest frames of a collapsed-stack file: (self share, inclusive share, frame)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = stack.split(";")
        total += int(samples)
        own[frames[-1]] += int(samples)
        for frame in set(frames):
            inclusive[frame] += int(samples)
    if not total:
        return []
    return [(n / total, inclusive[frame] / total, frame) for frame, n in own.most_common(count)]


def main() -> None:
    """`python -m bench.profile FILE...`: print the hottest frames of recorded profiles."""
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(
            "usage: python -m bench.profile PROFILE.txt...  (from `python -m bench --profile DIR`)"
        )
        raise SystemExit(0 if len(sys.argv) > 1 else 2)
    for name in sys.argv[1:]:
        print(f"== {name}  (self%, inclusive%, frame)")
        for own, inclusive, frame in top_frames(Path(name)):
            print(f"{own:6.1%} {inclusive:6.1%}  {frame}")


if __name__ == "__main__":
    main()
