"""Alert text from a detector action payload: a full email and an SMS within SNS limits.

SNS rules (iot-core-rules-and-limits §6): an email subject is ASCII, starts with a letter,
digit or punctuation, has no control characters and at most 99 characters here; an SMS is at
most 160 GSM-7 characters (extension characters count two), so ``C`` is written, never ``°C``.
"""

from __future__ import annotations

import math
import re
import shlex
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cloud.l4e.naming import plain_sensor

SUBJECT_MAX: Final = 99
SMS_MAX_SEPTETS: Final = 160

GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")
"""Characters sent as ESC + one septet: each counts as two."""
GSM7: Final = GSM7_BASIC | GSM7_EXTENSION
PRINTABLE_ASCII: Final = frozenset(chr(c) for c in range(32, 127))

SMS_ATTRIBUTES: Final[Mapping[str, str]] = {"AWS.SNS.SMS.SMSType": "Transactional"}

SEVERITY: Final[Mapping[str, str]] = {
    "ALARM": "critical",
    "STALE": "warning",
    "RECOVERED": "info",
    "RESUMED": "info",
}
"""An alert's ``severity`` message attribute by kind, for subscription filter policies
(page on ``critical``, mail the rest)."""

_TRANSLITERATE: Final[dict[str, str]] = {
    "°": "",
    "µ": "u",
    "μ": "u",
    "–": "-",
    "—": "-",
    "‘": "'",
    "’": "'",
    "‚": ",",
    "“": '"',
    "”": '"',
    "„": '"',
    "«": '"',
    "»": '"',
    "‹": "<",
    "›": ">",
    "′": "'",
    "″": '"',
    "…": "...",
    "×": "x",
    "÷": "/",
    "±": "+/-",
    "≥": ">=",
    "≤": "<=",
    "≠": "!=",
    "·": ".",
    "•": "*",
    "⁄": "/",
    "©": "(c)",
    "®": "(R)",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ı": "i",
    "œ": "oe",
    "Œ": "OE",
    "ø": "o",
    "Ø": "O",
    "æ": "ae",
    "Æ": "AE",
    "ß": "ss",
    "þ": "th",
    "Þ": "Th",
    "ð": "d",
    "€": "EUR",
    "\t": " ",
}
"""Spellings for characters NFKD does not reduce to ASCII; GSM-7's own (``ø``, ``ß``,
``Æ`` ...) are kept in an SMS and only spelled out in an email subject."""

_SUPERSCRIPTS: Final = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻]+")
_FROM_SUPERSCRIPT: Final = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
_FRACTION_AFTER_DIGIT: Final = re.compile(r"(?<=\d)(?=[\u00bc-\u00be\u2150-\u215f\u2189])")


def _fold(text: str, keep: frozenset[str]) -> str:
    """*text* in the characters of *keep*, for an SMS (GSM-7) or a subject (ASCII).

    Composed first, so a decomposed accent (NFD, as macOS stores names) is the letter it
    marks; a number written with a fraction or superscript keeps its meaning (``1½`` is
    ``1 1/2``, ``10²`` is ``10^2``, never ``112`` or ``102``); marks, zero-width and other
    format characters and pictographs are dropped; a control character is a space; a
    letter with no spelling (CJK, Cyrillic) is ``?`` so the name keeps its shape.
    """
    text = unicodedata.normalize("NFC", text)
    text = _SUPERSCRIPTS.sub(lambda m: "^" + m.group().translate(_FROM_SUPERSCRIPT), text)
    text = _FRACTION_AFTER_DIGIT.sub(" ", text)
    out: list[str] = []
    for ch in text:
        if ch in keep:
            out.append(ch)
            continue
        if ch in _TRANSLITERATE:
            out.append(_TRANSLITERATE[ch])
            continue
        category = unicodedata.category(ch)
        if category in ("Mn", "Me", "Cf"):
            continue
        if category.startswith(("C", "Z")):
            out.append(" ")
            continue
        if category == "Nd":  # a digit of another script: its value
            out.append(str(unicodedata.decimal(ch)))
            continue
        base = "".join(
            c
            for c in "".join(_TRANSLITERATE.get(d, d) for d in unicodedata.normalize("NFKD", ch))
            if c in keep
        )
        out.append(base if base or category in ("So", "Sk") else "?")
    return "".join(out)


def gsm7_septets(text: str) -> int | None:
    """Septets *text* takes in GSM-7, or None if any character is outside GSM-7."""
    if GSM7_BASIC.issuperset(text):  # the usual case, checked in C
        return len(text)
    count = 0
    for ch in text:
        if ch in GSM7_BASIC:
            count += 1
        elif ch in GSM7_EXTENSION:
            count += 2
        else:
            return None
    return count


def to_gsm7(text: str) -> str:
    """Nearest GSM-7 text: see :func:`_fold`."""
    if GSM7_BASIC.issuperset(text):  # nothing to change (alert texts build several per alert)
        return text
    return _fold(text, GSM7)


def fit_sms(text: str, limit: int = SMS_MAX_SEPTETS) -> str:
    """GSM-7 text of at most *limit* septets; trims with ``...`` and never exceeds."""
    text = to_gsm7(text)
    septets = gsm7_septets(text)
    assert septets is not None
    if septets <= limit:
        return text
    budget = limit - 3
    out: list[str] = []
    used = 0
    for ch in text:
        cost = 2 if ch in GSM7_EXTENSION else 1
        if used + cost > budget:
            break
        out.append(ch)
        used += cost
    return "".join(out).rstrip() + "..."


def valid_sender_id(value: str) -> bool:
    """SNS's rule for ``AWS.SNS.SMS.SenderID``: 3-11 ASCII letters, digits or '-', at least
    one letter, beginning and ending with a letter or digit; a publish with any other value
    is refused (``ParameterValueInvalid``)."""
    return (
        3 <= len(value) <= 11
        and all(c.isascii() and (c.isalnum() or c == "-") for c in value)
        and any(c.isascii() and c.isalpha() for c in value)
        and value[0] != "-"
        and value[-1] != "-"
    )


def ascii_subject(text: str, limit: int = SUBJECT_MAX) -> str:
    """A valid SNS email subject: printable ASCII, one line, leading letter/digit/punctuation."""
    if not (text.isascii() and text.isprintable()):  # else every character is kept
        text = _fold(text, PRINTABLE_ASCII)
    subject = " ".join(text.split())
    if not subject:
        subject = "plantwatch alert"
    if len(subject) > limit:
        subject = subject[: limit - 3].rstrip() + "..."
    return subject


@dataclass(frozen=True, slots=True)
class AlertContent:
    """What an alert says, read from a detector action payload."""

    kind: str
    """``ALARM``, ``RECOVERED``, ``STALE`` (went silent) or ``RESUMED`` (results are back)."""
    asset: str
    state: str
    event: str
    model: str
    score: float | None
    sensors: tuple[tuple[str, float], ...]
    time: str
    reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    ack: str | None = None
    """The command that acknowledges the asset's alarm, when an alarm model watches it."""


def content_from_payload(
    payload: Mapping[str, Any] | str, *, event_time_ms: int | None = None
) -> AlertContent:
    """Read an alert from the default action payload (§4) or a custom JSON one.

    Custom payloads may carry ``asset``, ``state``, ``event``, ``anomaly_score``, ``top_sensors``
    (``name=share;...``) or ``top_sensor``/``top_share``, ``timestamp``.
    """
    if isinstance(payload, str):
        payload = {"message": payload}
    inner = payload.get("payload") if isinstance(payload.get("payload"), Mapping) else None
    if inner is not None:
        # a custom payload may only look like the default one: what is not an object
        # there reads as absent, and the alert is still written
        detector = _object(inner.get("detector"))
        state = _object(inner.get("state"))
        variables = dict(_object(state.get("variables")))
        asset = str(detector.get("keyValue") or variables.get("asset") or "unknown")
        model = str(detector.get("detectorModelName", ""))
        state_name = str(state.get("stateName", ""))
        event = str(payload.get("eventName", ""))
        event_ms = payload.get("eventTime", event_time_ms)
        source: Mapping[str, Any] = variables
    else:
        asset = str(payload.get("asset") or payload.get("keyValue") or "unknown")
        model = str(payload.get("detectorModelName", payload.get("model", "")))
        state_name = str(payload.get("state", payload.get("stateName", "")))
        event = str(payload.get("event", payload.get("eventName", "")))
        event_ms = payload.get("eventTime", event_time_ms)
        source = payload
    score = _number(source.get("anomaly_score", source.get("last_score")))
    sensors = parse_sensors(source.get("top_sensors"))
    if not sensors:
        name = source.get("top_sensor")
        share = _number(source.get("top_share"))
        if isinstance(name, str) and name:
            sensors = ((name, share if share is not None else math.nan),)
    time_text = source.get("timestamp", source.get("last_timestamp"))
    if not isinstance(time_text, str) or not time_text:
        time_text = _iso_ms(event_ms)
    reason = source.get("prediction_reason", source.get("last_reason"))
    return AlertContent(
        kind=classify(state_name, event),
        asset=asset,
        state=state_name,
        event=event,
        model=model,
        score=score,
        sensors=sensors,
        time=time_text,
        reason=reason if isinstance(reason, str) else None,
        extra={k: v for k, v in source.items() if isinstance(k, str)},
    )


def classify(state: str, event: str) -> str:
    """Alarm, recovery, stale or resumed notice, from the state at action time and the event."""
    text = f"{state} {event}".lower()
    if "resum" in event.lower() or "back online" in event.lower():
        return "RESUMED"
    if "stale" in text or "offline" in text or "lost" in text or "silent" in text:
        return "STALE"
    if "recover" in text or state.lower() in ("normal", "ok", "online", "healthy"):
        return "RECOVERED"
    return "ALARM"


def parse_sensors(value: Any) -> tuple[tuple[str, float], ...]:
    """``"pump\\\\flow=0.61;pump\\\\temp=0.2"`` (as the feeder writes) or a list of dicts."""
    out: list[tuple[str, float]] = []
    if isinstance(value, str):
        for item in value.split(";"):
            name, sep, share = item.rpartition("=")
            number = _number(share) if sep else None
            if sep and name and number is not None:
                out.append((name, number))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping):
                name = item.get("name")
                number = _number(item.get("value", item.get("share")))
                if isinstance(name, str) and number is not None:
                    out.append((name, number))
    return tuple(out)


def _object(value: Any) -> Mapping[str, Any]:
    """*value* if it is a JSON object, else an empty one: a custom payload's fields may
    hold anything, and an alert is written from what is usable."""
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _iso_ms(ms: Any) -> str:
    if isinstance(ms, int | float) and not isinstance(ms, bool) and math.isfinite(ms):
        try:
            return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, OSError, ValueError):
            pass
    return "unknown time"


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def short_time(text: str) -> str:
    """``2026-01-01T00:03:00.000000`` (L4E, UTC) -> ``2026-01-01 00:03 UTC``; else unchanged."""
    moment = _parse_time(text)
    return text if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def long_time(text: str) -> str:
    """``2026-01-01T00:03:00.000000`` -> ``2026-01-01T00:03:00Z``; else unchanged."""
    moment = _parse_time(text)
    return text if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pct(share: float) -> str:
    return "?" if math.isnan(share) else f"{share * 100:.0f}%"


_ADVICE: Final[dict[str, str]] = {
    "ALARM": (
        "Confirm the device reports safe mode (the detector commands it through the device"
        " shadow), inspect the top contributing sensors first, check the asset on site and"
        " tell the maintenance team. `plantwatch alarms sent` lists the alert history;"
        " `plantwatch detectors describe ASSET` shows the detector state."
    ),
    "RECOVERED": (
        "Results have been normal for several consecutive readings. The device stays in safe"
        " mode until an operator restores it (`plantwatch shadow set <asset> mode=normal`);"
        " confirm on site and record the cause of the alarm first."
    ),
    "STALE": (
        "No anomaly results have arrived for this asset for twice the upload frequency: it"
        " went silent. Check that the device is online, that readings reach the broker, and"
        " that the inference scheduler is running. You get one notice when results return."
    ),
    "RESUMED": (
        "Anomaly results arrive again. The detector starts over in Normal; a device left in"
        " safe mode stays there until an operator restores it."
    ),
}


def build_email(content: AlertContent) -> tuple[str, str]:
    """Subject (valid SNS subject, <= 99 ASCII) and full plain-text body."""
    score = f" score {content.score:.2f}" if content.score is not None else ""
    if content.kind == "ALARM":
        head = f"ALARM {content.asset}: anomaly{score}"
    elif content.kind == "RECOVERED":
        head = f"RECOVERED {content.asset}: back to normal"
    elif content.kind == "RESUMED":
        head = f"RESUMED {content.asset}: results are back"
    else:
        head = f"STALE {content.asset}: went silent"
    subject = ascii_subject(f"[plantwatch] {head}")
    headline = {
        "ALARM": f"{content.asset} is behaving abnormally",
        "RECOVERED": f"{content.asset} is back to normal",
        "STALE": f"{content.asset} went silent: no anomaly results since {long_time(content.time)}",
        "RESUMED": f"anomaly results for {content.asset} are back",
    }[content.kind]
    score_text = "n/a" if content.score is None else f"{content.score:.3f}"
    lines = [
        f"plantwatch {content.kind}: {headline}.",
        f"What to do: {_ADVICE[content.kind]}",
        *([f"Acknowledge: {content.ack}"] if content.ack and content.kind == "ALARM" else []),
        "",
        f"Asset:      {content.asset}",
        f"State:      {content.state or 'unknown'}",
        f"Time:       {long_time(content.time)}",
        f"Score:      {score_text} (0-1; above 0.5 is anomalous)",
    ]
    if content.sensors:
        lines.append("Top contributing sensors (share of the prediction):")
        lines += [f"  - {name}: {_pct(share)}" for name, share in content.sensors]
    else:
        lines.append("Top contributing sensors: none reported")
    lines += [
        "",
        f"Event:      {content.event or 'unknown'}",
        f"Detector:   {content.model or 'unknown'}",
    ]
    if content.reason:
        lines.append(f"Reason:     {content.reason}")
    lines.append("")
    return subject, "\n".join(lines)


def build_sms(content: AlertContent) -> str:
    """At most 160 GSM-7 septets; the asset name is trimmed first, sensors last."""
    asset = to_gsm7(content.asset)
    if gsm7_septets(asset) is not None and len(asset) > 40:
        asset = asset[:37] + "..."
    score = f" score {content.score:.2f}" if content.score is not None else ""
    if content.kind == "ALARM":
        text = f"PLANTWATCH ALARM {asset}{score}"
        if content.sensors:
            name, share = content.sensors[0]
            text += f" top {plain_sensor(name)} {_pct(share)}"
        text += f" at {short_time(content.time)}. Safe mode commanded."
        if content.ack:
            tail = " Ack: " + _sms_command(content.ack)
            room = SMS_MAX_SEPTETS - (gsm7_septets(tail) or len(tail))
            return fit_sms(text, room) + tail if room >= 40 else fit_sms(text + tail)
    elif content.kind == "RECOVERED":
        text = f"PLANTWATCH RECOVERED {asset}{score} at {short_time(content.time)}. Still in safe mode."
    elif content.kind == "RESUMED":
        text = f"PLANTWATCH RESUMED {asset}: results are back. Safe mode, if set, stays."
    else:
        text = (
            f"PLANTWATCH STALE {asset} went silent: no results since {short_time(content.time)}."
            " Check device."
        )
    return fit_sms(text)


def alert_identity(
    model: str, key: str | None, event: str, state: str, entry: int, version: str = ""
) -> str:
    """Dedup key: one alert per (model, key, event, state entry) of a model *version*."""
    identity = f"{model}|{key or ''}|{event}|{state}|{entry}"
    return f"{identity}|v{version}" if version else identity


# ---------------------------------------------------------------- alarm notifications

_ALARM_WORDS: Final[dict[str, str]] = {
    "ACTIVE": "ALARM",
    "REMINDER": "REMINDER",
    "ACKNOWLEDGED": "ACKNOWLEDGED",
    "LATCHED": "LATCHED",
    "NORMAL": "CLEARED",
    "SNOOZE_DISABLED": "SNOOZED",
    "DISABLED": "DISABLED",
}
_SYMBOLS: Final[dict[str, str]] = {
    "GREATER": ">",
    "GREATER_OR_EQUAL": ">=",
    "LESS": "<",
    "LESS_OR_EQUAL": "<=",
    "EQUAL": "=",
    "NOT_EQUAL": "!=",
}
_NEEDS_ACK: Final = ("ACTIVE", "REMINDER", "LATCHED")


def alarm_severity(kind: str) -> str:
    """The ``severity`` message attribute of an alarm notification (see :data:`SEVERITY`)."""
    return "critical" if kind in _NEEDS_ACK else "info"


@dataclass(frozen=True, slots=True)
class AlarmNotice:
    """One alarm notification: a state change, or a reminder of an unacknowledged alarm."""

    kind: str
    """The state entered (``ACTIVE``, ``ACKNOWLEDGED``, ``LATCHED``, ``NORMAL``,
    ``SNOOZE_DISABLED``, ``DISABLED``) or ``REMINDER``."""
    model: str
    key: str | None
    state: str
    previous: str | None
    severity: int | None
    property_name: str
    value: Any
    operator: str
    threshold: Any
    time: str
    cause: str = ""
    """What caused it: ``rule``, an operator action (``ACKNOWLEDGE`` ...) or ``SNOOZE_TIMEOUT``."""
    reminder: int | None = None
    reminder_cap: int | None = None
    who: str | None = None
    note: str | None = None
    snooze_s: float | None = None
    additional: str | None = None


def alarm_target(model: str, key: str | None) -> str:
    """``MODEL [KEY]`` as shell words: a key comes from device data, and a command pasted
    from an alert must act on that alarm and run nothing else (``pump; rm -rf ~``)."""
    return shlex.join([model, key] if key else [model])


def ack_command(model: str, key: str | None, note: str = "what you found") -> str:
    """The command an operator runs to acknowledge this alarm; alert texts carry it."""
    return f'plantwatch alarms ack {alarm_target(model, key)} --note "{note}"'


def _sms_command(command: str) -> str:
    """*command* (from :func:`ack_command`) without its note, each word folded to GSM-7
    before it is quoted again: folding a quoted word could close its quotes (’ is ')."""
    try:
        words = shlex.split(command)
    except ValueError:  # not one of ack_command's: shown as it is, folded
        return to_gsm7(command.split(" --note", 1)[0])
    if len(words) >= 2 and words[-2] == "--note":
        words = words[:-2]
    return shlex.join(to_gsm7(word) for word in words)


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "?" if value is None else str(value)


def _rule_text(notice: AlarmNotice) -> str:
    symbol = _SYMBOLS.get(notice.operator, notice.operator)
    return (
        f"{notice.property_name} {_short(notice.value)}"
        f" (alarm when {symbol} {_short(notice.threshold)})"
    )


def _alarm_headline(notice: AlarmNotice) -> str:
    key = notice.key or notice.model
    by = f" by {notice.who}" if notice.who else ""
    note = f": {notice.note}" if notice.note else ""
    if notice.kind == "ACTIVE":
        return f"{key}: {_rule_text(notice)}"
    if notice.kind == "REMINDER":
        return (
            f"{key} still ACTIVE and not acknowledged"
            f" ({notice.reminder}/{notice.reminder_cap}): {_rule_text(notice)}"
        )
    if notice.kind == "ACKNOWLEDGED" or notice.cause == "ACKNOWLEDGE":
        return f"{key} acknowledged{by}{note}"
    if notice.kind == "LATCHED":
        return f"{key} back in range but never acknowledged: {_rule_text(notice)}"
    if notice.kind == "SNOOZE_DISABLED":
        minutes = f" for {notice.snooze_s / 60:g} min" if notice.snooze_s else ""
        return f"{key} snoozed{minutes}{by}{note}"
    if notice.kind == "DISABLED":
        return f"{key} disabled{by}{note}"
    if notice.cause in ("RESET", "ENABLE"):
        word = "reset" if notice.cause == "RESET" else "enabled"
        return f"{key} {word}{by}{note}"
    if notice.cause == "SNOOZE_TIMEOUT":
        return f"{key} snooze ended; watching again"
    return f"{key} back to normal: {_rule_text(notice)}"


def build_alarm_email(notice: AlarmNotice) -> tuple[str, str]:
    """Subject (valid SNS subject) and a full body that says what to run next."""
    word = _ALARM_WORDS.get(notice.kind, notice.kind)
    severity = "" if notice.severity is None else f" (severity {notice.severity})"
    subject = ascii_subject(f"[plantwatch] {word} {_alarm_headline(notice)}{severity}")
    target = alarm_target(notice.model, notice.key)
    lines = [f"plantwatch alarm {notice.model}: {_alarm_headline(notice)}."]
    if notice.kind in _NEEDS_ACK:
        lines += [
            "",
            f"Acknowledge:  {ack_command(notice.model, notice.key)}",
            f'Snooze:       plantwatch alarms snooze {target} --for 30m --note "why"',
        ]
    lines += [
        f"History:      plantwatch alarms history {target}",
        "",
        f"Alarm:        {notice.model}{severity}",
        f"Key:          {notice.key or '(none)'}",
        f"State:        {notice.state} (was {notice.previous or 'new'}) at {notice.time}",
        f"Rule:         {notice.property_name} {_SYMBOLS.get(notice.operator, notice.operator)}"
        f" {_short(notice.threshold)}",
        f"Last value:   {_short(notice.value)}",
    ]
    if notice.who or notice.note:
        lines.append(f"Operator:     {notice.who or 'unknown'}: {notice.note or '(no note)'}")
    if notice.additional:
        lines += ["", notice.additional]
    lines.append("")
    return subject, "\n".join(lines)


def build_alarm_sms(notice: AlarmNotice) -> str:
    """At most 160 GSM-7 septets; an alarm that needs acknowledging keeps its ack command.

    The configuration's additional message (``smsConfigurations[].additionalMessage``, the
    model author's instruction, as AWS's notification function appends it) follows the
    headline and is what is cut first when the text is too long.
    """
    word = _ALARM_WORDS.get(notice.kind, notice.kind)
    text = f"PLANTWATCH {word} {_alarm_headline(notice)}"
    additional = " ".join((notice.additional or "").split()).rstrip(" .")
    if additional:
        text += f". {additional}"
    head = to_gsm7(text)
    if notice.kind not in _NEEDS_ACK:
        return fit_sms(head)
    tail = ". Ack: " + _sms_command(ack_command(notice.model, notice.key))
    room = SMS_MAX_SEPTETS - (gsm7_septets(tail) or len(tail))
    if room < 20:
        # a command too long to fit whole: a short headline, then as much of the command
        # as fits, so the text still says what to run
        return fit_sms(fit_sms(head, 20) + tail)
    return fit_sms(head, room) + tail


def alarm_notice_from_payload(payload: Mapping[str, Any]) -> AlarmNotice:
    """An alarm's action payload (§7) as a notice. plantwatch's own notifications add a
    ``notice`` object (what changed, why, who, the reminder count) the texts need."""
    state = _object(payload.get("alarmState"))
    evaluation = _object(_object(state.get("ruleEvaluation")).get("simpleRuleEvaluation"))
    action = _object(state.get("customerAction"))
    name = str(action.get("actionName", ""))
    config = _object(action.get(f"{name.lower()}ActionConfiguration"))
    extra = _object(payload.get("notice"))
    state_name = str(state.get("stateName", ""))
    note = extra.get("note") if "note" in extra else (config.get("note") or None)
    return AlarmNotice(
        kind=str(extra.get("kind") or state_name),
        model=str(payload.get("alarmModelName", "")),
        key=_text(payload.get("keyValue")),
        state=state_name,
        previous=_text(extra.get("previous")),
        severity=_integer(payload.get("severity")),
        property_name=str(extra.get("property") or "value"),
        value=_number(evaluation.get("inputPropertyValue")),
        operator=str(evaluation.get("operator", "")),
        threshold=_number(evaluation.get("thresholdValue")),
        time=_iso_ms(payload.get("stateUpdateTime")),
        cause=str(extra.get("cause") or name or "rule"),
        reminder=_integer(extra.get("reminder")),
        reminder_cap=_integer(extra.get("reminderCap")),
        who=_text(extra.get("who")),
        note=_text(note),
        snooze_s=_number(extra.get("snooze_s")),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
