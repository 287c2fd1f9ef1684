"""The IoT Events API reference's ``Integer``: 32-bit signed, wherever a member has that type.

Several members the engines check are typed ``Integer`` in the API reference:
TimerDefinition ``seconds`` (BatchUpdateDetector), an alarm model's ``severity``
(CreateAlarmModel), ``snoozeDuration`` (BatchSnoozeAlarm) and a SiteWise
``integerValue`` (AssetPropertyVariant). A value past these bounds breaks the request's
shape whatever the member means, so the bounds are defined once, here, and each member
narrows them where the API does (a severity from 0, a snooze from 1 s).
"""

from __future__ import annotations

from typing import Final

INTEGER_MIN: Final = -(2**31)
INTEGER_MAX: Final = 2**31 - 1
