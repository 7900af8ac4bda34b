"""`python -m layers.native`: build the native kernels for this machine.

Exits 0 also when no compiler is found or the build fails: the layers then
run their XLA kernels, with the same results, and this says so.
"""

import sys

from layers import native


def main() -> int:
    """Build the library and report what happened."""
    try:
        path = native.build()
    except RuntimeError as error:
        print(f"native kernels: build failed; the layers use their XLA kernels\n{error}")
        return 0
    print(f"native kernels: built {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
