"""GNU Radio blocks of LGVSC: thin wrappers around the plain classes of lgvsc_phy.

Imported by the flowgraphs (and GRC through grc_flowgraphs/blocks/*.block.yml), never by the
semantic processes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pmt
from gnuradio import gr

from lgvsc_phy import impairments, ofdm_kernels, stream_time
from lgvsc_phy.channel_profiles import fading_on, rician
from lgvsc_phy.header import CODED_BITS, decode_header
from lgvsc_phy.mcs import MCS_TABLE, McsError, get_mcs
from lgvsc_phy.ofdm import OfdmBurstReceiver
from lgvsc_phy.ofdm_params import OfdmParams
from lgvsc_phy.phy_frame import PhyFrameCodec
from lgvsc_phy.pmt_codec import PmtError, decode_pair, encode_pair

IN, OUT, STATS = pmt.intern("in"), pmt.intern("out"), pmt.intern("stats")
SNAPSHOT_EVERY, SNAPSHOT_SYMBOLS = 25, 240  # equalized symbols sent with the decoder's counters


def _stats_pdu(**fields: int | float) -> pmt.pmt_t:
    meta = pmt.make_dict()
    for key, value in fields.items():
        val = pmt.from_double(value) if isinstance(value, float) else pmt.from_long(int(value))
        meta = pmt.dict_add(meta, pmt.intern(key), val)
    return pmt.cons(meta, pmt.init_u8vector(0, []))


def _to_pmt(meta: dict, data: bytes | np.ndarray) -> pmt.pmt_t:
    """cons(meta, uniform vector) through our serializer: element-by-element PMT construction
    from Python costs ~70 us per 2000 samples, this ~10 us (bursts pass several per burst)."""
    return pmt.deserialize_str(encode_pair(meta, data))


def _from_pmt(msg: pmt.pmt_t) -> tuple[dict, object] | None:
    """(meta, value) of a PDU-like pair, uniform vectors as numpy arrays (u8 as bytes)."""
    if not pmt.is_pair(msg):
        return None
    try:
        return decode_pair(pmt.serialize_str(msg))
    except PmtError:
        return None


class BurstMapper(gr.basic_block):
    """PDU in -> the burst's complex symbols out (coded header, then LDPC-coded QAM payload).

    The header carries the MCS, so the receiver needs no configuration to follow a change.
    """

    def __init__(self, mcs: str = "qpsk-1/2") -> None:
        gr.basic_block.__init__(self, name="lgvsc_burst_mapper", in_sig=None, out_sig=None)
        self.default_mcs = get_mcs(mcs).name
        self.mappers = {self.default_mcs: get_mcs(mcs).mapper()}
        sys.setswitchinterval(min(sys.getswitchinterval(), 5e-4))  # see OfdmReceiver
        self.seq = 0
        self.message_port_register_in(IN)
        self.message_port_register_out(OUT)
        self.set_msg_handler(IN, self.handle)

    def handle(self, msg: pmt.pmt_t) -> None:
        """A PDU's metadata may name its MCS (``mcs``: unequal protection); else the block's."""
        pair = _from_pmt(msg)
        if pair is None or not isinstance(pair[1], bytes):
            gr.log.warn("lgvsc: dropping a message that is not a u8 PDU")
            return
        meta, payload = pair
        name = meta.get("mcs", self.default_mcs)
        if name not in self.mappers:
            if not isinstance(name, str) or name not in MCS_TABLE:
                gr.log.warn(f"lgvsc: dropping PDU for unknown MCS {name!r}")
                return
            self.mappers[name] = MCS_TABLE[name].mapper()
        limit = MCS_TABLE[name].max_link_pdu_bytes
        if not payload or len(payload) > limit:
            gr.log.warn(f"lgvsc: dropping PDU that is not 1..{limit} bytes for {name}")
            return
        symbols = self.mappers[name].symbols(payload, self.seq).astype(np.complex64)
        self.seq = (self.seq + 1) & 0xFFFF
        vec = pmt.deserialize_str(encode_pair(None, symbols))
        self.message_port_pub(OUT, pmt.cons(pmt.car(msg), pmt.cdr(vec)))


class FrameDecoding:
    """Soft demap -> LDPC -> CRC of one burst's equalized symbols, with the counters (and the
    occasional constellation snapshot) a decoder publishes. Shared by ``PhyFrameDecoder`` and
    ``OfdmReceiver(decode=True)``."""

    def __init__(self, max_iter: int = 50) -> None:
        self.max_iter = max_iter
        self.codecs: dict[str, PhyFrameCodec] = {}
        # Load the compiled LDPC kernels now, not on the first burst (that would stall the stream).
        codec = get_mcs("qpsk-1/2").codec()
        for codewords in (2, 40):  # the one-by-one and the side-by-side kernels
            codec.decode_symbols(np.ones(972 * codewords, dtype=np.complex64))
        self.good = self.bad = 0

    def decode(self, meta: dict, symbols: np.ndarray) -> tuple[bytes | None, dict]:
        """(payload or None, stats); ``meta`` (with ``mcs`` and ``csi``) becomes the PDU's metadata."""
        csi = meta.pop("csi", None)
        name = meta.get("mcs")
        try:
            codec = self.codecs.get(name) or self.codecs.setdefault(
                name, PhyFrameCodec(get_mcs(name).code, get_mcs(name).constellation, self.max_iter))
        except McsError:  # a header naming no MCS of ours: nothing to decode
            return None, {}
        frame = codec.decode_symbols(symbols, csi if isinstance(csi, np.ndarray) else None)
        if frame.payload is None:
            self.bad += 1
        else:
            self.good += 1
            meta.update(ldpc_iterations=frame.ldpc_iterations, raw_bit_errors=frame.raw_bit_errors,
                        raw_bits=frame.raw_bits)
            meta.setdefault("snr_db", frame.snr_db)
        stats: dict = {"crc_fail": self.bad, "crc_ok": self.good}
        if (self.good + self.bad) % SNAPSHOT_EVERY == 1:  # a constellation snapshot for reports
            stats.update(constellation=symbols[:SNAPSHOT_SYMBOLS].astype(np.complex64), constellation_mcs=name)
        return frame.payload, stats


class PhyFrameDecoder(gr.basic_block):
    """Equalized QAM symbols (c32 PDU, MCS and CSI in its metadata) -> soft demap -> LDPC -> CRC.

    Frames failing the CRC are dropped here and counted on the ``stats`` port. Good payloads
    leave with the receiver's metadata plus ldpc_iterations and the channel (pre-FEC) bit errors.
    """

    def __init__(self, max_iter: int = 50) -> None:
        gr.basic_block.__init__(self, name="lgvsc_phy_frame_decoder", in_sig=None, out_sig=None)
        self.decoding = FrameDecoding(max_iter)
        self.message_port_register_in(IN)
        self.message_port_register_out(OUT)
        self.message_port_register_out(STATS)
        self.set_msg_handler(IN, self.handle)

    def handle(self, msg: pmt.pmt_t) -> None:
        pair = _from_pmt(msg)
        if pair is None or not isinstance(pair[1], np.ndarray) or pair[1].dtype != np.complex64:
            return
        meta, symbols = pair
        payload, stats = self.decoding.decode(meta, symbols)
        if payload is not None:
            self.message_port_pub(OUT, _to_pmt(meta, payload))
        if stats:
            self.message_port_pub(STATS, _to_pmt(stats, b""))


class BurstPadding(gr.basic_block):
    """Zeros before and after each tagged burst; the length tag grows to cover them.

    GNU Radio's burst shaper does this too, but it asks for input before each output item, so a
    burst's trailing zeros wait for the next burst: the last burst of a transmission never ends.
    A USRP sink then holds that burst open (no end-of-burst until the next PDU), and a channel
    that needs samples past the burst (the SFO resampler) withholds its tail. Here the zeros
    need no input: they go out with the burst.
    """

    def __init__(self, pre_padding: int = 0, post_padding: int = 0, length_tag: str = "packet_len") -> None:
        gr.basic_block.__init__(self, name="lgvsc_burst_padding", in_sig=[np.complex64], out_sig=[np.complex64])
        self.pre, self.post, self.tag_key = int(pre_padding), int(post_padding), pmt.intern(length_tag)
        self.set_tag_propagation_policy(gr.TPP_DONT)  # the length tag is rewritten, others follow below
        self.copy_left = 0  # samples of the current burst still to copy
        self.zeros_left = 0  # zeros still to emit (before or after the burst)
        self.in_burst = False  # from a burst's length tag until its trailing zeros are scheduled

    def forecast(self, noutput_items: int, ninputs: int) -> list[int]:  # noqa: ARG002 - GNU Radio signature
        return [0 if self.zeros_left else 1]

    def _start_burst(self, consumed: int, produced: int) -> None:
        tags = self.get_tags_in_window(0, consumed, consumed + 1, self.tag_key)
        length = pmt.to_long(tags[0].value) if tags else 1  # untagged samples pass one by one
        out_offset = self.nitems_written(0) + produced
        self.add_item_tag(0, out_offset, self.tag_key, pmt.from_long(length + self.pre + self.post))
        for tag in self.get_tags_in_window(0, consumed, consumed + 1):
            if not pmt.eq(tag.key, self.tag_key):  # tags with the burst (tx_time, ...) go to its start
                self.add_item_tag(0, out_offset, tag.key, tag.value)
        self.copy_left, self.zeros_left, self.in_burst = length, self.pre, True

    def general_work(self, input_items, output_items):  # noqa: ANN001, ANN201 - GNU Radio signature
        inp, out = input_items[0], output_items[0]
        produced = consumed = 0
        while produced < len(out):
            if self.zeros_left:
                n = min(self.zeros_left, len(out) - produced)
                out[produced : produced + n] = 0
                produced += n
                self.zeros_left -= n
                continue
            if not self.copy_left:
                if self.in_burst:  # the burst is done: its trailing zeros
                    self.in_burst, self.zeros_left = False, self.post
                    continue
                if consumed >= len(inp):
                    break
                self._start_burst(consumed, produced)
                continue
            n = min(self.copy_left, len(inp) - consumed, len(out) - produced)
            if n == 0:
                break
            out[produced : produced + n] = inp[consumed : consumed + n]
            produced, consumed, self.copy_left = produced + n, consumed + n, self.copy_left - n
        self.consume(0, consumed)
        return produced


class BurstCounter(gr.sync_block):
    """Sink that counts the samples and bursts a transmitter emits.

    Each burst's length tag announces it whole, so on each tag it publishes
    ``{"bursts", "samples"}`` on ``stats``: the on-air sample count up to that burst's end.
    """

    def __init__(self, length_tag: str = "packet_len") -> None:
        gr.sync_block.__init__(self, name="lgvsc_burst_counter", in_sig=[np.complex64], out_sig=None)
        self.tag_key = pmt.intern(length_tag)
        self.message_port_register_out(STATS)
        self.bursts = 0

    def work(self, input_items, output_items):  # noqa: ANN001, ANN201 - GNU Radio signature
        n = len(input_items[0])
        for tag in self.get_tags_in_window(0, 0, n, self.tag_key):
            self.bursts += 1
            end = tag.offset + pmt.to_long(tag.value)
            self.message_port_pub(STATS, _stats_pdu(bursts=self.bursts, samples=end))
        return n


class OfdmReceiver(gr.sync_block):
    """IQ stream in -> one c32 PDU of equalized payload symbols per detected burst.

    Wraps ``OfdmBurstReceiver``. PDU metadata: ``csi`` (f32vector, per symbol 1 / noise variance),
    ``mcs``, ``seq``, ``snr_db``, ``esnr_db`` (effective SNR over the data carriers), ``cfo``, ``sfo_ppm``
    (the sample clock offset tracked so far), ``start``;
    ``stats`` reports detections and header failures.

    ``batch`` > 0: ``work`` runs on multiples of that many samples (a live radio's continuous
    stream; 0, each chunk as it comes, where a stream may end with a burst, as a loopback's does).

    With ``decode`` it also runs the PHY frame decoder (``FrameDecoding``) in this block's own
    thread and emits CRC-checked payload PDUs, as ``PhyFrameDecoder`` would: two Python blocks in
    one process contend for the GIL at every numpy call, which cost the rx 35 % of its CPU.
    """

    def __init__(self, threshold: float = 0.06, decode: bool = False, max_iter: int = 50,
                 cfo_range: float = 1.0, batch: int = 0) -> None:
        gr.sync_block.__init__(self, name="lgvsc_ofdm_receiver", in_sig=[np.complex64], out_sig=None)
        if batch < 0:
            raise ValueError(f"batch is a sample count >= 0, not {batch}")
        if batch:
            # Work on multiples of ``batch`` samples: a radio source hands over one USB packet
            # (~2000 samples) per call, and each call into Python costs about as much as the
            # samples' own processing at 2 MS/s. Only where samples never stop (a radio): on a
            # stream that ends, the last burst would wait for samples that never come.
            self.set_output_multiple(int(batch))
        self.receiver = OfdmBurstReceiver(OfdmParams.default(), threshold, cfo_range)
        self.gap_meter = stream_time.GapMeter()
        self.decoding = FrameDecoding(max_iter) if decode else None
        # Without ``decode`` the receiver and the decoder are Python blocks on their own scheduler
        # threads; with the default 5 ms GIL switch interval a waiting thread can lose 5 ms per
        # burst, which intermittently slowed the chain tenfold. Hand over the GIL sooner.
        sys.setswitchinterval(min(sys.getswitchinterval(), 5e-4))
        decode_header(np.zeros(CODED_BITS))  # load the compiled Viterbi and receiver loops before samples flow
        ofdm_kernels.warm_up()
        self.detected = 0
        self.message_port_register_out(OUT)
        self.message_port_register_out(STATS)

    def set_threshold(self, threshold: float) -> None:
        """Schmidl-Cox detection threshold; read at every ``work`` call, so it acts at once."""
        self.receiver.threshold = float(threshold)

    def set_cfo_range(self, cfo_range: float) -> None:
        """The largest |CFO| acquired, subcarrier spacings; acts from the next detection."""
        self.receiver.set_cfo_range(float(cfo_range))

    def _gaps(self, count: int) -> list[tuple[int, int]]:
        """(index, samples lost before it) in this call's ``count`` samples, from the
        ``rx_rate`` and ``rx_time`` tags a USRP source (or the channel's SampleDrops) puts
        after each overflow."""
        first = self.nitems_read(0)
        gaps = []
        for tag in self.get_tags_in_window(0, 0, count):
            key = pmt.symbol_to_string(tag.key)
            if key == stream_time.RX_RATE and pmt.is_real(tag.value):
                self.gap_meter.set_rate(pmt.to_double(tag.value))
            elif key == stream_time.RX_TIME and (when := stream_time.time_of(tag.value)) is not None:
                if lost := self.gap_meter.time_tag(tag.offset, when):
                    gaps.append((tag.offset - first, lost))
        return gaps

    def work(self, input_items, output_items):  # noqa: ANN001, ANN201 - GNU Radio signature
        filled_before = self.receiver.gaps_filled
        stats: dict = {}
        for burst in self.receiver.feed(input_items[0], self._gaps(len(input_items[0]))):
            self.detected += 1
            meta = {"start": burst.start, "seq": burst.seq, "mcs": burst.mcs, "cfo": burst.cfo,
                    "sfo_ppm": burst.sfo_ppm, "snr_db": burst.snr_db, "esnr_db": burst.esnr_db,
                    "csi": np.asarray(burst.csi, np.float32)}
            if self.decoding is None:
                self.message_port_pub(OUT, _to_pmt(meta, burst.symbols.astype(np.complex64)))
            else:
                payload, decoded = self.decoding.decode(meta, burst.symbols)
                if payload is not None:
                    self.message_port_pub(OUT, _to_pmt(meta, payload))
                stats.update(decoded)  # cumulative counters: the last burst's hold the call's
            stats.update(bursts=self.detected, header_fail=self.receiver.headers_failed)
        if stats or self.receiver.gaps_filled != filled_before:  # a gap on noise alone is news too
            stats.update(gaps_filled=self.receiver.gaps_filled)
        if stats:
            # One counters message per call, after its PDUs, not one per burst: each message
            # wakes the stats sink and its ZeroMQ thread (at 2 MS/s of bursts, ~500 a second).
            self.message_port_pub(STATS, _to_pmt(stats, b""))
        return len(input_items[0])


class _SwitchableStage(gr.hier_block2):
    """A complex in -> out hier block through an impairment ``stage``, or through a plain copy
    while the impairment is off (a disabled impairment costs nothing then). Turning it on or off
    from a GUI knob rewires the block, also while the flowgraph runs (lock/unlock)."""

    def __init__(self, name: str) -> None:
        gr.hier_block2.__init__(self, name, gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        self.stage: gr.basic_block | None = None
        self._wired = False

    def _wire(self, stage: gr.basic_block | None) -> None:
        from gnuradio import blocks

        if self._wired:
            self.lock()
            self.disconnect_all()
        self.connect(self, stage if stage is not None else blocks.copy(gr.sizeof_gr_complex), self)
        if self._wired:
            self.unlock()
        self.stage, self._wired = stage, True


class ProfileFading(_SwitchableStage):
    """The fading stage of a channel profile: GNU Radio's flat ``fading_model`` (Rayleigh, or
    Rician with line of sight and K factor) for the fading profiles, a plain copy otherwise,
    so static profiles pay nothing for it."""

    def __init__(self, profile: str = "awgn", doppler: float = 1e-5, k_factor: float = 4.0, seed: int = 0) -> None:
        super().__init__("lgvsc_profile_fading")
        self.profile, self.doppler, self.k_factor, self.seed = profile, float(doppler), float(k_factor), int(seed)
        self._rebuild()

    def _rebuild(self) -> None:
        from gnuradio import channels

        stage = None
        if fading_on(self.profile):
            stage = channels.fading_model(8, self.doppler, bool(rician(self.profile)), self.k_factor, self.seed)
        self._wire(stage)

    def set_profile(self, profile: str) -> None:
        """Line of sight is fixed when GNU Radio's model is made: a new profile, a new model."""
        if profile != self.profile:
            self.profile = profile
            self._rebuild()

    def set_doppler(self, doppler: float) -> None:
        self.doppler = float(doppler)
        if self.stage is not None:
            self.stage.set_fDTs(self.doppler)

    def set_k_factor(self, k_factor: float) -> None:
        self.k_factor = float(k_factor)
        if self.stage is not None:
            self.stage.set_K(self.k_factor)


class PhaseNoise(_SwitchableStage):
    """GNU Radio's ``phase_noise_gen`` when ``noise_mag`` > 0, a plain copy otherwise: the
    generator costs ~45 ns a sample even at magnitude 0, a quarter of the channel process."""

    def __init__(self, noise_mag: float = 0.0, alpha: float = 0.1) -> None:
        super().__init__("lgvsc_phase_noise")
        self.noise_mag, self.alpha = float(noise_mag), float(alpha)
        self._rebuild()

    def _rebuild(self) -> None:
        from gnuradio import channels

        self._wire(channels.phase_noise_gen(self.noise_mag, self.alpha) if self.noise_mag > 0 else None)

    def set_noise_mag(self, noise_mag: float) -> None:
        on = self.noise_mag > 0
        self.noise_mag = float(noise_mag)
        if (self.noise_mag > 0) != on:
            self._rebuild()
        elif self.stage is not None:
            self.stage.set_noise_mag(self.noise_mag)

    def set_alpha(self, alpha: float) -> None:
        self.alpha = float(alpha)
        if self.stage is not None:
            self.stage.set_alpha(self.alpha)


# Front-end impairments (lgvsc_phy.impairments). Each is a plain copy while off, so a channel
# without impairments passes its samples bit for bit and pays almost nothing for them.


_Model = impairments.RappPa | impairments.Adc | impairments.SampleDrops


class _SampleMap(gr.sync_block):
    """One output sample per input sample, by ``model`` (the PA, the ADC)."""

    def __init__(self, name: str, model: Callable[[np.ndarray], np.ndarray]) -> None:
        gr.sync_block.__init__(self, name, in_sig=[np.complex64], out_sig=[np.complex64])
        self.model = model

    def work(self, input_items: list, output_items: list) -> int:
        output_items[0][:] = self.model(input_items[0])
        return len(output_items[0])


class _DropBlock(gr.basic_block):
    """Fewer samples out than in: the gaps are lost. Like a USRP source after an overflow, it
    tags the first sample after each gap (and the stream's first) with ``rx_time`` and
    ``rx_rate``, from which a receiver counts what was lost (``stream_time``)."""

    def __init__(self, drops: impairments.SampleDrops, samp_rate: float) -> None:
        gr.basic_block.__init__(self, "lgvsc_sample_drops", in_sig=[np.complex64], out_sig=[np.complex64])
        self.drops, self.samp_rate = drops, float(samp_rate)
        # Samples come out fewer than they go in: upstream tags would land off their samples.
        self.set_tag_propagation_policy(gr.TPP_DONT)

    def _tag_time(self, offset: int, samples_in: int) -> None:
        self.add_item_tag(0, offset, pmt.intern(stream_time.RX_TIME), stream_time.time_pmt(samples_in / self.samp_rate))
        self.add_item_tag(0, offset, pmt.intern(stream_time.RX_RATE), pmt.from_double(self.samp_rate))

    def general_work(self, input_items: list, output_items: list) -> int:
        n = min(len(input_items[0]), len(output_items[0]))
        first_in, first_out = self.nitems_read(0), self.nitems_written(0)
        if first_in == 0:
            self._tag_time(0, 0)
        kept, resumes = self.drops.split(input_items[0][:n])
        output_items[0][: kept.size] = kept
        for out_index, in_index in resumes:  # the first sample after each gap
            self._tag_time(first_out + out_index, first_in + in_index)
        self.consume(0, n)
        return int(kept.size)


class _ModelStage(_SwitchableStage):
    """A stage that runs an ``impairments`` model (anything with ``on``) in the block ``make``
    builds for it. Setters change the model in place (the block reads it on every call) and
    rewire only when the model turns on or off."""

    def __init__(self, name: str, model: _Model, make: Callable[[_Model], gr.basic_block]) -> None:
        super().__init__(name)
        self.model, self._make = model, make
        self._wire(make(model) if model.on else None)

    def _update(self, change: Callable[[], None]) -> None:
        was_on = self.model.on
        change()
        if self.model.on != was_on:
            self._wire(self._make(self.model) if self.model.on else None)


class PaCompression(_ModelStage):
    """The transmitter's PA by Rapp's model (``impairments.RappPa``) at ``backoff_db`` input
    back-off, smoothness p; a copy while ``backoff_db`` <= 0 (linear PA)."""

    def __init__(self, backoff_db: float = impairments.PA_OFF, smoothness: float = 2.0) -> None:
        self.pa = impairments.RappPa(backoff_db, smoothness)
        super().__init__("lgvsc_pa_rapp", self.pa, lambda pa: _SampleMap("lgvsc_rapp_pa", pa))

    def set_backoff_db(self, backoff_db: float) -> None:
        self._update(lambda: setattr(self.pa, "backoff_db", float(backoff_db)))

    def set_smoothness(self, smoothness: float) -> None:
        self.pa.smoothness = float(smoothness)


class SampleClockOffset(_SwitchableStage):
    """Sample clock offset: GNU Radio's polyphase arbitrary resampler (``filter.pfb_arb_resampler_ccf``)
    at the constant rate 1 + ppm 1e-6 (rx samples per tx sample); a copy at 0 ppm.

    Not ``channels.sro_model``: it draws a bounded random walk of the offset, not a constant one,
    and like ``filter.mmse_resampler_cc`` it interpolates with GNU Radio's 8-tap MMSE filter, which
    is exact at mu = 0 but leaves an error of -19 dB at mu = 0.5 on our OFDM, whose carriers reach
    0.41 fs: a model artifact that cost PDUs at 15 dB. The polyphase filter here (32 arms, pass
    band 0.45 fs, 80 dB stop band) stays ~55 dB below the signal."""

    FILTERS, ATTENUATION_DB, PASS_BAND, TRANSITION = 32, 80.0, 0.45, 0.1

    def __init__(self, ppm: float = 0.0) -> None:
        super().__init__("lgvsc_sample_clock_offset")
        self.ppm = float(ppm)
        self._rebuild()

    @property
    def rate(self) -> float:
        """Output samples per input sample (the resampler's rate)."""
        return 1.0 + self.ppm * 1e-6

    @classmethod
    def taps(cls) -> list[float]:
        from gnuradio.filter import firdes

        n = cls.FILTERS
        return list(firdes.low_pass_2(n, n, cls.PASS_BAND + cls.TRANSITION / 2, cls.TRANSITION, cls.ATTENUATION_DB))

    def _rebuild(self) -> None:
        from gnuradio import filter as gr_filter

        stage = gr_filter.pfb_arb_resampler_ccf(self.rate, self.taps(), self.FILTERS) if self.ppm else None
        self._wire(stage)

    def set_ppm(self, ppm: float) -> None:
        on = bool(self.ppm)
        self.ppm = float(ppm)
        if bool(self.ppm) != on:
            self._rebuild()
        elif self.stage is not None:
            self.stage.set_rate(self.rate)


class IqImbalance(_SwitchableStage):
    """Receiver IQ imbalance: GNU Radio's ``channels.iqbal_gen`` in receiver mode (gain in dB on
    I, phase in degrees); a copy while both are 0."""

    def __init__(self, magnitude_db: float = 0.0, phase_deg: float = 0.0) -> None:
        super().__init__("lgvsc_iq_imbalance")
        self.magnitude_db, self.phase_deg = float(magnitude_db), float(phase_deg)
        self._rebuild()

    @property
    def on(self) -> bool:
        return bool(self.magnitude_db or self.phase_deg)

    def _rebuild(self) -> None:
        from gnuradio import channels

        self._wire(channels.iqbal_gen(self.magnitude_db, self.phase_deg, 1) if self.on else None)

    def _set(self, magnitude_db: float, phase_deg: float) -> None:
        on = self.on
        self.magnitude_db, self.phase_deg = float(magnitude_db), float(phase_deg)
        if self.on != on:
            self._rebuild()
        elif self.stage is not None:
            self.stage.set_magnitude(self.magnitude_db)
            self.stage.set_phase(self.phase_deg)

    def set_magnitude_db(self, magnitude_db: float) -> None:
        self._set(magnitude_db, self.phase_deg)

    def set_phase_deg(self, phase_deg: float) -> None:
        self._set(self.magnitude_db, phase_deg)


class DcOffset(_SwitchableStage):
    """Receiver DC offset ``dbc`` below the unit-power signal: GNU Radio's ``blocks.add_const_cc``;
    a copy at or below ``impairments.DC_OFF_DBC``."""

    def __init__(self, dbc: float = impairments.DC_OFF_DBC) -> None:
        super().__init__("lgvsc_dc_offset")
        self.dbc = float(dbc)
        self._rebuild()

    def _rebuild(self) -> None:
        from gnuradio import blocks

        dc = impairments.dc_offset(self.dbc)
        self._wire(blocks.add_const_cc(dc) if dc else None)

    def set_dbc(self, dbc: float) -> None:
        on = bool(impairments.dc_offset(self.dbc))
        self.dbc = float(dbc)
        dc = impairments.dc_offset(self.dbc)
        if bool(dc) != on:
            self._rebuild()
        elif self.stage is not None:
            self.stage.set_k(dc)


class AdcQuantizer(_ModelStage):
    """The receiver's ADC (``impairments.Adc``): ``bits`` per rail, clipping at full scale
    ``headroom_db`` above the signal RMS; a copy at 0 bits. (GNU Radio's ``channels.quantizer``
    rounds through a short, so it clips at 2^15 steps, not at its full scale, and is real only.)"""

    def __init__(self, bits: int = impairments.ADC_OFF, headroom_db: float = impairments.ADC_HEADROOM_DB) -> None:
        self.adc = impairments.Adc(bits, headroom_db)
        super().__init__("lgvsc_adc", self.adc, lambda adc: _SampleMap("lgvsc_adc", adc))

    def set_bits(self, bits: int) -> None:
        self._update(lambda: setattr(self.adc, "bits", int(bits)))


class SampleDrops(_ModelStage):
    """Random gaps of ``gap`` samples lost, ``rate`` gaps a sample (``impairments.SampleDrops``);
    a copy at rate 0."""

    def __init__(self, rate: float = 0.0, gap: int = impairments.GAP_SAMPLES, seed: int = 0,
                 samp_rate: float = impairments.DROPS_SAMPLE_RATE) -> None:
        self.drops = impairments.SampleDrops(rate, gap, seed)
        super().__init__("lgvsc_sample_drops", self.drops, lambda drops: _DropBlock(drops, samp_rate))

    def set_rate(self, rate: float) -> None:
        self._update(lambda: self.drops.set_rate(rate))
