"""A minimal MQTT broker for edge tests that need a broker to misbehave in one exact way
(lose one PUBACK, refuse MQTT 5 in one of the ways brokers do) where mosquitto and amqtt
cannot be told to.

It serves any number of clients, answers CONNECT (MQTT 3.1.1 or 5), PINGREQ, SUBSCRIBE and
QoS 1 PUBLISH, and records what it saw. Nothing is routed between clients.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from edge.wire import decode

V5_ANSWERS = {
    "accept": b"\x20\x03\x00\x00\x00",
    "refuse": b"\x20\x03\x00\x84\x00",  # MQTT 5 CONNACK: UNSUPPORTED_PROTOCOL_VERSION (132)
    "refuse_as_311": b"\x20\x02\x00\x01",  # MQTT 3.1.1 CONNACK: unacceptable protocol level
    "silent": b"",
}
"""How the broker answers an MQTT 5 CONNECT: as a broker that speaks it, as one that
refuses it in MQTT 5's words or in 3.1.1's (MQTT-3.1.2-2), or not at all."""


def remaining_length(data: bytes, at: int = 0) -> tuple[int, int] | None:
    """(length, offset of the body) of the MQTT packet at *at*, or None if incomplete."""
    value, shift = 0, 0
    for i in range(at + 1, min(at + 5, len(data))):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    return None


class MiniBroker:
    def __init__(
        self,
        v5: str = "accept",
        drop_first_telemetry_puback: bool = False,
        refuse_subscriptions: bool = False,
        connack_311: int = 0,
        disconnect_on_telemetry: int = 0,
        connack_5: int = 0,
    ) -> None:
        """*refuse_subscriptions*: every SUBACK carries the failure code 0x80, as a broker
        whose policy does not grant the filter answers. *connack_311*: the return code of
        the CONNACK to an MQTT 3.1.1 CONNECT (5: not authorized), after which a refusing
        broker closes the connection. *connack_5*: likewise the reason code of the CONNACK
        to an MQTT 5 CONNECT (0x8A: banned), when not 0. *disconnect_on_telemetry*: the reason code of the
        MQTT 5 DISCONNECT that answers every telemetry PUBLISH (0x98: administrative action)
        before the broker closes the connection; 0 acknowledges telemetry."""
        self.v5 = v5
        self.disconnect_on_telemetry = disconnect_on_telemetry
        self.connack_311 = connack_311
        self.connack_5 = connack_5
        self.refuse_subscriptions = refuse_subscriptions
        self.mute = False
        """While set, every CONNECT goes unanswered (an overloaded broker, a proxy with no
        upstream); a connection whose CONNECT went unanswered stays so."""
        self.levels: list[int] = []
        """The protocol level of every CONNECT, in order (4: MQTT 3.1.1, 5: MQTT 5)."""
        self.telemetry: list[tuple[float, str]] = []
        """(monotonic time, msg_id) of every telemetry PUBLISH."""
        self.accepted = 0
        self._drop = drop_first_telemetry_puback
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"mqtt://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data, level = b"", 4
        try:
            while chunk := conn.recv(65536):
                data += chunk
                while (parsed := remaining_length(data)) and len(data) >= sum(parsed):
                    length, body = parsed
                    packet, data = data[: body + length], data[body + length :]
                    level = self._answer(conn, packet[0], packet[body:], level)
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()

    def _answer(self, conn: socket.socket, header: int, body: bytes, level: int) -> int:
        kind = header >> 4
        if kind == 1:  # CONNECT: b"\x00\x04MQTT" then the protocol level
            level = body[6]
            with self._lock:
                self.levels.append(level)
            if self.mute:
                return level
            if level != 5:
                conn.sendall(b"\x20\x02\x00" + bytes([self.connack_311]))
                if self.connack_311:
                    raise ConnectionError("refused")
                return level
            if self.connack_5:
                conn.sendall(b"\x20\x03\x00" + bytes([self.connack_5]) + b"\x00")
                raise ConnectionError("refused")
            answer = V5_ANSWERS[self.v5]
            if answer:
                conn.sendall(answer)
            if self.v5.startswith("refuse"):
                raise ConnectionError("refused")
        elif kind == 12:  # PINGREQ
            conn.sendall(b"\xd0\x00")
        elif kind == 8 and self.refuse_subscriptions:  # SUBACK failure for its one filter
            properties = b"\x00" if level == 5 else b""
            conn.sendall(bytes([0x90, 3 + len(properties)]) + body[:2] + properties + b"\x80")
        elif kind == 8:  # SUBSCRIBE: QoS 1 granted for its one filter
            conn.sendall(b"\x90\x03" + body[:2] + b"\x01")
        elif kind == 3 and (header >> 1) & 3 == 1:  # QoS 1 PUBLISH
            topic_len = int.from_bytes(body[:2], "big")
            topic = body[2 : 2 + topic_len].decode()
            packet_id = body[2 + topic_len : 4 + topic_len]
            payload = body[4 + topic_len :]
            if level == 5:  # skip the properties
                props = remaining_length(b"\x00" + payload)
                assert props is not None
                payload = payload[sum(props) - 1 :]
            if topic.endswith("/telemetry"):
                with self._lock:
                    self.telemetry.append((time.monotonic(), decode(payload).msg_id))
                    drop, self._drop = self._drop, False
                if self.disconnect_on_telemetry and level == 5:
                    reason = bytes([self.disconnect_on_telemetry])
                    conn.sendall(b"\xe0\x02" + reason + b"\x00")
                    raise ConnectionError("disconnected")
                if drop:
                    return level
            conn.sendall(b"\x40\x02" + packet_id)
        return level

    def drop_connections(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        self.drop_connections()
