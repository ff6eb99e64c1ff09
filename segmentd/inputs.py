"""Rules for request text that every layer reading it shares: control characters and integers."""

from __future__ import annotations

import re

# C0 and C1 control characters (NUL included): no name, identifier or filter needs them and
# some databases cannot store them. Free text (descriptions) keeps tab and newlines.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

INT32_MAX = 2**31 - 1  # what every database's INTEGER column holds
INT64_MAX = 2**63 - 1
MAX_DIGITS = 20  # more than any 64-bit integer has
# Plain ASCII decimal digits: int() also takes '+', spaces, '_' and other scripts' digits,
# and refuses (after scanning them) more than 4300 digits.
_INTEGER = re.compile(r"-?[0-9]{1,%d}" % MAX_DIGITS)


def bounded_int(text: str, minimum: int, maximum: int) -> int | None:
    """`text` as an integer within [minimum, maximum], or None if it is not one.

    The length is checked before anything converts it.
    """
    if len(text) > MAX_DIGITS + 1 or not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None
