"""PER and channel BER of random PDUs through the real tx, channel and rx flowgraphs.

    python -m tools.per_sweep --mcs qpsk-1/2 --snr 4 6 8 --pdus 200 [--json OUT.json]

Each SNR point starts fresh flowgraph processes and sends ``--pdus`` full-size PDUs.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from lgvsc_phy.framing import OVERHEAD_BYTES
from lgvsc_phy.link import Link, LinkAddresses
from lgvsc_phy.mcs import get_mcs
from lgvsc_phy.runner import FlowgraphRunner, LoopbackConfig


def measure(mcs: str, snr_db: float, pdus: int, channel: str, base_port: int, seed: int, **impairments: float) -> dict:
    """PER of ``pdus`` full PDUs; ``impairments``: cfo, timing_offset, doppler, phase_noise."""
    m = get_mcs(mcs)
    data = os.urandom(pdus * (m.max_link_pdu_bytes - OVERHEAD_BYTES))
    config = LoopbackConfig(mcs=mcs, snr_db=snr_db, channel=channel, base_port=base_port, seed=seed, **impairments)
    t0 = time.monotonic()
    with FlowgraphRunner(config) as runner, Link(LinkAddresses.from_base_port(base_port)) as link:
        res = link.transfer(data, m.max_link_pdu_bytes, idle_timeout_s=3.0, check=runner.check)
    raw_bits = sum(int(x.get("raw_bits", 0)) for x in res.meta)
    raw_err = sum(int(x.get("raw_bit_errors", 0)) for x in res.meta)
    return {"mcs": mcs, "snr_db": snr_db, "channel": channel, **impairments, "pdus_sent": res.pdus_sent,
            "pdus_received": res.pdus_received, "per": 1 - res.pdus_received / res.pdus_sent,
            "gaps_filled": res.gaps_filled,
            "channel_ber": raw_err / raw_bits if raw_bits else None, "on_air_samples": res.tx_samples,
            "chain_msps": res.tx_samples / res.wall_s / 1e6, "wall_s": time.monotonic() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mcs", nargs="+", default=["qpsk-1/2"])
    ap.add_argument("--snr", nargs="+", type=float, default=[4.0, 6.0, 8.0])
    ap.add_argument("--pdus", type=int, default=200)
    ap.add_argument("--channel", default="awgn")
    ap.add_argument("--base-port", type=int, default=52101)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    rows = []
    for mcs in args.mcs:
        for snr in args.snr:
            row = measure(mcs, snr, args.pdus, args.channel, args.base_port, args.seed)
            rows.append(row)
            ber = f"{row['channel_ber']:.2e}" if row["channel_ber"] is not None else "n/a"
            print(f"{mcs:10s} {snr:5.1f} dB  PER {row['per']:.3f} ({row['pdus_received']}/{row['pdus_sent']})  "
                  f"channel BER {ber}  {row['chain_msps']:.2f} Msps", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
