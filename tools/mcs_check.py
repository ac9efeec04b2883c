"""Issue check: `lgvsc loopback --mcs NAME --snr-db (threshold + 1)` delivers >= 95 % of PDUs.

    python -m tools.mcs_check [--pdus 200] [--margin 1.0]

Runs each MCS through the real flowgraphs at its measured threshold (lgvsc_phy.mcs.THRESHOLD_DB)
plus the margin and prints the delivered share; exit code 1 if any falls short.
"""

from __future__ import annotations

import argparse
import sys

from lgvsc_phy.mcs import MCS_TABLE, THRESHOLD_DB
from tools.per_sweep import measure


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pdus", type=int, default=200)
    ap.add_argument("--margin", type=float, default=1.0)
    ap.add_argument("--base-port", type=int, default=52401)
    args = ap.parse_args()
    short = []
    for name in MCS_TABLE:
        snr = THRESHOLD_DB[name] + args.margin
        row = measure(name, snr, args.pdus, "awgn", args.base_port, seed=7)
        share = row["pdus_received"] / row["pdus_sent"]
        print(f"{name:10s} at {snr:5.1f} dB: {row['pdus_received']}/{row['pdus_sent']} PDUs ({share:.1%})", flush=True)
        if share < 0.95:
            short.append(name)
    print("all MCS deliver >= 95 %" if not short else f"short: {', '.join(short)}")
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
