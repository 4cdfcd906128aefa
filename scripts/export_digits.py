"""Export scikit-learn's bundled handwritten digits to ``grader/datasets/digits.npz``.

scikit-learn is a development-only dependency: the kit reads the exported file at run time and
never imports sklearn. Run from the repository root::

    python scripts/export_digits.py            # (re)write the file
    python scripts/export_digits.py --check    # exit 1 if the committed file differs

The output is byte-reproducible: the arrays are written in scikit-learn's order, and
``np.savez_compressed`` gives every zip member the fixed timestamp 1980-01-01 (``ZipInfo``'s
default), so two exports with the same NumPy/zlib produce identical bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "grader" / "datasets" / "digits.npz"


def load_arrays() -> dict[str, np.ndarray]:
    """Return ``images`` (uint8, (1797, 64), 0..16) and ``labels`` (uint8, (1797,))."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    data = np.asarray(digits.data)
    target = np.asarray(digits.target)
    if data.shape != (1797, 64) or target.shape != (1797,):
        raise RuntimeError(f"unexpected shapes {data.shape}, {target.shape}")
    if not (np.all(data == np.round(data)) and data.min() >= 0 and data.max() <= 16):
        raise RuntimeError("pixel values are not integers in 0..16")
    if set(np.unique(target).tolist()) != set(range(10)):
        raise RuntimeError("labels are not 0..9")
    return {
        "images": np.ascontiguousarray(data, dtype=np.uint8),
        "labels": np.ascontiguousarray(target, dtype=np.uint8),
    }


def array_sha256(a: np.ndarray) -> str:
    """sha256 of the raw C-order bytes of an array (independent of the npz container)."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output file (default: %(default)s)")
    parser.add_argument(
        "--check", action="store_true", help="compare with the existing file instead of writing"
    )
    args = parser.parse_args(argv)

    arrays = load_arrays()
    if args.check:
        with np.load(args.out) as f:
            same = all(np.array_equal(f[k], v) and f[k].dtype == v.dtype for k, v in arrays.items())
        print(f"{args.out}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, images=arrays["images"], labels=arrays["labels"])
    for name, a in arrays.items():
        print(f"{name}: {a.dtype} {a.shape} sha256={array_sha256(a)}")
    print(f"file sha256={hashlib.sha256(args.out.read_bytes()).hexdigest()}  ({args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
