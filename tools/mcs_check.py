"""Issue check: every MCS delivers its share of PDUs at its AWGN threshold plus a margin.

    python -m tools.mcs_check [--pdus 200] [--margin 1.0] [--target 0.95]
    python -m tools.mcs_check --impairments b2x0 --margin 2 --target 0.99 --up-to 16qam-3/4 [--seeds 5]

Runs each MCS through the real flowgraphs at its measured threshold (lgvsc_phy.mcs.THRESHOLD_DB)
plus the margin, optionally with a named front-end impairment profile
(lgvsc_phy.channel_spec.IMPAIRMENT_PROFILES), and prints the delivered share; exit code 1 if any
falls short. With sample gaps in the profile, the channel tags each gap as a USRP source tags an
overflow, and the receiver fills it (``gaps filled``); a burst a gap cuts still decodes where the
gap spares its preamble and header and the code bridges the erased symbols. ``gap floor`` is the
share left to a receiver that loses every burst a gap cuts: an expectation, since one run of
1000 bpsk PDUs meets ~7 gaps, give or take 2.6; ``--seeds`` pools runs with different noise and
gap draws (seeds 7, 8, ...), each of ``--pdus`` PDUs.
"""

from __future__ import annotations

import argparse
import sys

from lgvsc_phy.channel_spec import IMPAIRMENT_PROFILES
from lgvsc_phy.impairments import GAP_SAMPLES
from lgvsc_phy.mcs import MCS_TABLE, THRESHOLD_DB, get_mcs
from tools.per_sweep import measure


def gap_floor(mcs: str, drop_rate: float) -> float:
    """Expected share of full-size bursts that no gap cuts into (what a receiver that cannot
    bridge a gap delivers): a gap that starts within the burst's body, or up to a gap's length
    before it, takes samples from it."""
    m = get_mcs(mcs)
    body = m.burst_cost(m.max_link_pdu_bytes)[1] - m.ofdm.post_padding
    return (1 - drop_rate) ** (body + GAP_SAMPLES)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pdus", type=int, default=200)
    ap.add_argument("--margin", type=float, default=1.0, help="dB above the MCS's AWGN threshold")
    ap.add_argument("--target", type=float, default=0.95, help="share of PDUs each MCS must deliver")
    ap.add_argument("--impairments", choices=sorted(IMPAIRMENT_PROFILES), default="none")
    ap.add_argument("--up-to", choices=list(MCS_TABLE), help="the fastest MCS to check (default: all)")
    ap.add_argument("--seeds", type=int, default=1, help="runs pooled per MCS, each with its own noise and gaps")
    ap.add_argument("--base-port", type=int, default=52401)
    args = ap.parse_args()
    names = list(MCS_TABLE)
    names = names[: names.index(args.up_to) + 1] if args.up_to else names
    profile = IMPAIRMENT_PROFILES[args.impairments]
    short = []
    for name in names:
        snr = THRESHOLD_DB[name] + args.margin
        rows = [measure(name, snr, args.pdus, "awgn", args.base_port, seed=7 + k, **profile) for k in range(args.seeds)]
        received, sent, filled = (sum(row[key] for row in rows)
                                  for key in ("pdus_received", "pdus_sent", "gaps_filled"))
        share = received / sent
        floor = gap_floor(name, float(profile.get("drop_rate", 0.0)))
        print(f"{name:10s} at {snr:5.1f} dB: {received}/{sent} PDUs ({share:.1%}; gap floor {floor:.1%}, "
              f"gaps filled {filled})", flush=True)
        if share < args.target:
            short.append(name)
    print(f"all MCS deliver >= {args.target:.0%}" if not short else f"short: {', '.join(short)}")
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
