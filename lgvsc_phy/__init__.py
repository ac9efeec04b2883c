"""Radio side of LGVSC: link framing, ZeroMQ link, flowgraph runner, MCS/CBR accounting.

Nothing here imports ``semantic``; only ``lgvsc_phy.gr_blocks`` imports GNU Radio, so the
semantic processes can use the link without GNU Radio installed.
"""
