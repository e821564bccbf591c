"""Package size: build the wheel and report its size and the shipped models' share.

    .venv/bin/python bench/package_size.py [--out /tmp/emovox-wheel]

Builds ``emovox-*.whl`` with ``pip wheel . --no-deps --no-build-isolation``
(nothing downloaded), then prints the wheel's size on disk, the unpacked size
of each shipped model folder inside it (``emovox/pretrained/<name>/``), and
the budget of issue 10 (60 MB).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_MB = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/emovox-wheel"))
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(args.out),
        ],
        check=True,
    )
    wheel = next(args.out.glob("emovox-*.whl"))
    size_mb = wheel.stat().st_size / 1e6
    models: dict[str, list[int]] = {}
    with zipfile.ZipFile(wheel) as archive:
        infos = archive.infolist()
        for info in infos:
            parts = info.filename.split("/")
            if len(parts) > 3 and parts[:2] == ["emovox", "pretrained"]:
                entry = models.setdefault(parts[2], [0, 0])
                entry[0] += info.file_size
                entry[1] += info.compress_size
        unpacked = sum(i.file_size for i in infos) / 1e6
    print(
        f"{wheel.name}: {size_mb:.1f} MB on disk ({unpacked:.1f} MB unpacked); budget {BUDGET_MB:.0f} MB: "
        f"{'within' if size_mb <= BUDGET_MB and unpacked <= BUDGET_MB else 'OVER'}"
    )
    for name, (raw, packed) in sorted(models.items()):
        print(f"  pretrained/{name}: {raw / 1e6:.1f} MB unpacked, {packed / 1e6:.1f} MB in the wheel")


if __name__ == "__main__":
    main()
