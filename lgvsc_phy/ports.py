"""The local ZeroMQ ports of the flowgraphs: every address is a base port plus one ``Port`` offset.

In the loopback the IQ goes tx -> channel -> rx over ``TX_IQ`` and ``CHANNEL_IQ``. ``lgvsc send``
and ``lgvsc receive`` run no channel flowgraph, so the CurveZMQ relay's local hop takes the
channel's port (``RELAY_IQ``, an alias of ``CHANNEL_IQ``).
"""

from __future__ import annotations

from enum import IntEnum

LOCALHOST = "127.0.0.1"
DEFAULT_BASE_PORT = 52001


class Port(IntEnum):
    PDU_IN = 0  # link -> tx flowgraph: PDUs to send
    TX_IQ = 1  # tx flowgraph's IQ out (to the channel, or to a receiver on another host)
    TX_STATS = 2  # tx flowgraph's burst counters
    CHANNEL_IQ = 3  # channel flowgraph's IQ out, to the rx
    RELAY_IQ = 3  # send / receive: between the flowgraph and the CurveZMQ relay (no channel runs there)
    PDU_OUT = 4  # rx flowgraph -> link: decoded PDUs
    RX_STATS = 5  # rx flowgraph's decoder counters

    def address(self, base_port: int, host: str = LOCALHOST) -> str:
        return f"tcp://{host}:{base_port + self}"


PORT_SPAN = max(Port) + 1  # consecutive ports a base port reserves

# The socket parameters of each loopback flowgraph (as its .grc names them) and the port each takes:
# the flowgraphs bind their outputs, the channel and rx connect to the IQ upstream of them.
LOOPBACK_SOCKETS: dict[str, dict[str, Port]] = {
    "tx": {"pdu_in": Port.PDU_IN, "iq_out": Port.TX_IQ, "stats_out": Port.TX_STATS},
    "channel": {"iq_in": Port.TX_IQ, "iq_out": Port.CHANNEL_IQ},
    "rx": {"iq_in": Port.CHANNEL_IQ, "pdu_out": Port.PDU_OUT, "stats_out": Port.RX_STATS},
}


def socket_addresses(flowgraph: str, base_port: int, host: str = LOCALHOST) -> dict[str, str]:
    """``flowgraph``'s socket parameters and their addresses in a loopback at ``base_port``."""
    return {name: port.address(base_port, host) for name, port in LOOPBACK_SOCKETS[flowgraph].items()}
