"""LGVSC, the application: the layer that wires the semantic codec (``semantic``) to the radio
(``lgvsc_phy``). The ``lgvsc`` command (``cli``), the loopback job (``loopback``), the rate
control and link adaptation that size a stream for the link (``rate_control``), progress lines,
the loopback's HTML page, and the bundled sample videos the demo plays."""
