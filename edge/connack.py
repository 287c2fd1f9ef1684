"""What a broker's refusal of a CONNECT means for the agent, and what to do, by reason.

An MQTT 5 CONNACK refuses with a reason code (MQTT 5.0 section 3.2.2.2), an MQTT 3.1.1 one
with a return code 1 to 5 (section 3.2.2.3), each of which has an MQTT 5 counterpart. One
piece of advice for all of them sent the reader to the credentials for a ban, a CONNECT
larger than the broker takes or a connection rate. AWS IoT Core answers a CONNECT with
0x80, 0x85, 0x86, 0x87 and 0x90, among others; mosquitto 2.0.11 answers a wrong password
with 0x87, not 0x86, so the advice for 0x87 names the credentials as well as the policy.
"""

from __future__ import annotations

MQTT311_AS_MQTT5 = {1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}
"""MQTT 3.1.1 CONNACK return codes -> the MQTT 5 reason codes that say the same."""

_KEEPS_TRYING = "the agent keeps trying with its backoff"
_CREDENTIALS = "the credentials: [auth] username and password, or the [tls] cert and key"

_ADVICE = {
    0x80: "the broker gives no reason: see its log (on IoT Core, AWS IoT logging in CloudWatch)",
    0x81: "the broker could not read the CONNECT: set [agent].protocol to what it speaks "
    '("auto" finds it) and see its log',
    0x82: "the broker found the CONNECT against the protocol: set [agent].protocol to what it "
    'speaks ("auto" finds it) and see its log',
    0x83: "the broker's own rule refused it: see its log",
    0x84: 'the broker does not speak this MQTT version: set [agent].protocol = "auto" or to '
    "the version it speaks",
    0x85: "the broker does not allow the client id, [agent].sender {client_id!r} (IoT Core "
    "takes at most 128 bytes, not starting with '$', and a policy may require the thing "
    "name; with plantwatch up --auth it must be the [auth] username)",
    0x86: f"check {_CREDENTIALS} (plantwatch auth add-device prints a local broker's)",
    0x87: "the client may not connect: on IoT Core the [tls] certificate must be active and "
    "its policy must allow iot:Connect on client/{client_id}; on a local broker check "
    f"{_CREDENTIALS} (mosquitto answers a wrong password so)",
    0x88: f"the broker is unavailable; {_KEEPS_TRYING} (see its log if it lasts)",
    0x89: f"the broker is busy; {_KEEPS_TRYING}",
    0x8A: "the broker has banned this client (by its client id {client_id!r}, its address or "
    "its user name): an administrator of the broker must lift the ban; trying again "
    "does not help",
    0x8C: "the broker asks for an authentication method the agent does not use (it signs "
    "in with [auth] username and password or a [tls] certificate)",
    0x90: "the broker refused the topic of the agent's last will, its status topic made of "
    "[agent].site and sender: its policy must allow publishing there",
    0x95: "the CONNECT is larger than the broker takes: it carries the client id, [auth] and "
    "the last will, an offline status listing [agent].assets; split the assets across "
    "agents or use shorter names",
    0x97: "a quota of the broker is used up (on IoT Core, the account's connections: see "
    f"Service Quotas); {_KEEPS_TRYING}",
    0x99: "the broker refused the last will's payload, a JSON status document: see its log",
    0x9A: "the broker takes no retained messages: see its log (the agent's last will is not "
    "retained)",
    0x9B: "the broker does not take QoS 1, which the agent's last will and publishes need",
    0x9C: "the broker sends its clients to another server{server}: set [agent].broker to it "
    "(the agent does not follow a redirection)",
    0x9D: "the broker has moved{server}: set [agent].broker to its new address (the agent "
    "does not follow a redirection)",
    0x9F: "too many CONNECTs: IoT Core takes one CONNECT a second per client id, and another "
    "client connecting as [agent].sender {client_id!r} adds to them; " + _KEEPS_TRYING,
}
"""MQTT 5 CONNACK reason codes -> what to do, with ``{client_id}`` and ``{server}`` (the
CONNACK's Server Reference) filled in."""


def refusal_advice(code: int, client_id: str, server: str | None = None) -> str:
    """What to do about a CONNACK refusing the agent with MQTT 5 reason *code*."""
    advice = _ADVICE.get(code, "see the broker's log for why")
    where = f" ({' '.join(server.split())[:200]})" if server else ""
    return advice.format(client_id=client_id, server=where)


def refusal_advice_311(code: int, client_id: str) -> str:
    """What to do about an MQTT 3.1.1 CONNACK refusing the agent with return *code*."""
    return refusal_advice(MQTT311_AS_MQTT5.get(code, 0x80), client_id)


UNKNOWN_311 = (
    "the return code is one of: 4 bad user name or password or 5 not authorized (check "
    f"{_CREDENTIALS}, and on IoT Core the certificate's policy), 2 identifier rejected "
    "([agent].sender), 3 server unavailable, 1 unacceptable protocol version"
)
"""What to do about an MQTT 3.1.1 refusal whose return code the client did not pass on."""
