"""Semantic layer of LGVSC: video <-> an explicit, human-readable representation (bytes).

Never imports GNU Radio or lgvsc_phy: the bitstream is all it hands over.
"""
