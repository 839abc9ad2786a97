"""Packet timing: what SimAI's packet-level (ns-3) run adds to a fluid flow.

An element built with the network (simai_ns3_semantics.md sections 4-6): a link moves 9000 B of
payload per truncated serialisation time of 9052 B, plus one ACK frame's time where the reverse
direction carries data (every ring link does; NVLink ACKs take 0 ns); a flow is acknowledged
(hops-1) store-and-forward packet times and one ACK return trip after its last byte drains.
The fluid network is built on `capacity`; the network model adds `extra_delay(links)` per flow.
"""

from __future__ import annotations

import numpy as np

from netsim.network.routing import CompiledNetwork

# bytes: PACKET_PAYLOAD_SIZE of NetZIP's SimAI.conf (the default when no conf is given; a case's
# SimAI.conf sets it), RoCE headers, ACK frame
PAYLOAD, HEADERS, ACK = 9000, 52, 60


def ser_ns(nbytes: int, rate: float) -> int:
    """ns-3 serialisation: whole nanoseconds, truncated (Time integer division)."""
    return int(nbytes * 8 * 1e9 // (rate * 8))


class PacketTiming:
    """Effective link capacities and per-flow store-and-forward and ACK delays of packet transport."""

    def __init__(self, net: CompiledNetwork, payload: int = PAYLOAD):
        self.payload = payload
        self.capacity = net.capacity.copy()
        self.payload_capacity = net.capacity.copy()  # payload rate without ACKs (dummy stays inf)
        self.ack_share = np.zeros(net.capacity.shape[0])  # an ACK's time over a data packet's
        self._ser = np.zeros(net.capacity.shape[0])
        self._back = np.zeros(net.capacity.shape[0])
        for i in range(len(net.ends)):
            rate = net.capacity[i]
            t_pkt = ser_ns(payload + HEADERS, rate)
            t_ack = ser_ns(ACK, rate)
            self.capacity[i] = payload / ((t_pkt + t_ack) * 1e-9)
            self.payload_capacity[i] = payload / (t_pkt * 1e-9)
            self.ack_share[i] = t_ack / t_pkt
            self._ser[i] = t_pkt * 1e-9
            self._back[i] = net.latency[i] + t_ack * 1e-9
        self._ser_l = self._ser.tolist()
        self._back_l = self._back.tolist()

    @property
    def packet_s(self) -> np.ndarray:
        """Per link: one data packet's serialisation (seconds)."""
        return self._ser

    @property
    def ack_return_s(self) -> np.ndarray:
        """Per link: propagation plus one ACK's serialisation (seconds)."""
        return self._back

    def extra_delay(self, links) -> float:
        """Store-and-forward of the last packet on every hop after the first, and the ACK's return."""
        ser = [self._ser_l[link] for link in links]
        back = sum(self._back_l[link] for link in links)
        return sum(ser[1:]) + back
