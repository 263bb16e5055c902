"""Print the folder, among those given, whose ``original.json`` records the highest test accuracy.

    python scripts/best_original.py originals/cifar10-resnet18-r*   # used by gpu_bench.sh's recipes stage
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(folders: list[str]) -> None:
    scored = []
    for folder in map(Path, folders):
        record = folder / "original.json"
        if record.is_file():
            info = json.loads(record.read_text())
            scored.append((info["test_accuracy"], str(folder)))
            recipe = info["recipe"]
            print(f"{folder}: {info['test_accuracy']:.2f} % ({info.get('size')} px, {recipe['epochs']} epochs, "
                  f"lr {recipe['lr']}, warm-up {recipe.get('warmup', 0.0)}, {info['seconds']:.0f} s)",
                  file=sys.stderr)
    if not scored:
        raise SystemExit("no trained original (original.json) among " + " ".join(folders))
    print(max(scored)[1])


if __name__ == "__main__":
    main(sys.argv[1:])
