"""Run the ``qunmatrix`` command line under a memory cap, as the input-bomb tests and the bomb
benchmark do:

    python tests/capped_cli.py MB [qunmatrix arguments …]

The cap is an address-space limit of MB above what this interpreter holds when it starts
(measured, not guessed); 0 means no cap.
"""

from __future__ import annotations

import resource
import sys


def address_space() -> int:
    """Bytes of address space this process holds now (VmSize)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def main() -> None:
    cap = int(sys.argv[1]) * 1024 * 1024
    if cap:
        limit = address_space() + cap
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from bot.cli import app

    app(sys.argv[2:], prog_name="qunmatrix")


if __name__ == "__main__":
    main()
