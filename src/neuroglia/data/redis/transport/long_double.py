"""Redis' ``long double`` arithmetic for INCRBYFLOAT and HINCRBYFLOAT, emulated exactly.

Redis computes these two commands in C's ``long double``, which on the x86-64
Linux servers it is built for is the x87 80-bit extended format (a 64-bit
significand, exponents down to 2**-16445 and up to about 1.19e4932). It
reads numbers with ``strtold`` (decimal or hexadecimal, correctly rounded)
and prints the result with ``"%.17Lf"``, trailing zeros removed. A Python
``float`` differs on all three: ``0.1`` comes back ``0.10000000000000001``,
``1e17 + 1`` loses the 1, ``0x10`` is refused. Here the values are exact
rationals (:class:`fractions.Fraction`), rounded to the extended format after
every step as the hardware does, so the answers are the server's to the last
digit.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

__all__ = ["LongDouble", "add", "format_human", "parse"]

LongDouble = Fraction | float
"""A finite value of the extended format (a :class:`Fraction`), or ``±inf``."""

_PRECISION: Final = 64  # significand bits, the integer bit included
_MIN_EXPONENT: Final = -16382  # of normal numbers; subnormals share it
_MAX_EXPONENT: Final = 16383
_INF: Final = float("inf")
# Redis refuses a number written with 5 KiB or more (MAX_LONG_DOUBLE_CHARS).
_MAX_CHARS: Final = 5 * 1024

_DECIMAL: Final = re.compile(rb"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_HEX: Final = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?\d+))?")
_INFINITY: Final = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)


def _round(value: Fraction) -> LongDouble:
    """``value`` rounded to the nearest extended-format number (ties to even); ``±inf`` beyond its range."""
    if value == 0:
        return Fraction(0)
    negative = value < 0
    magnitude = -value if negative else value
    num, den = magnitude.numerator, magnitude.denominator
    exponent = num.bit_length() - den.bit_length()  # floor(log2) or one more
    if (num << max(0, -exponent)) < (den << max(0, exponent)):
        exponent -= 1
    exponent = max(exponent, _MIN_EXPONENT)
    shift = exponent - (_PRECISION - 1)  # the weight of the last significand bit
    if shift >= 0:
        quotient, remainder = divmod(num, den << shift)
        divisor = den << shift
    else:
        quotient, remainder = divmod(num << -shift, den)
        divisor = den
    if 2 * remainder > divisor or (2 * remainder == divisor and quotient & 1):
        quotient += 1
    if quotient == 1 << _PRECISION:  # rounding carried into a new bit
        quotient, shift = quotient >> 1, shift + 1
    if quotient.bit_length() + shift - 1 > _MAX_EXPONENT:
        return -_INF if negative else _INF
    result = Fraction(quotient << shift) if shift >= 0 else Fraction(quotient, 1 << -shift)
    return -result if negative else result


# Python refuses int <-> str conversions of more than 4300 digits by default
# (a guard against slow conversions); a long double has up to 4950. Convert in
# pieces of this many digits.
_CHUNK: Final = 4000
_CHUNK_POWER: Final = 10**_CHUNK


def _int(digits: str) -> int:
    value = 0
    for start in range(0, len(digits), _CHUNK):
        piece = digits[start : start + _CHUNK]
        value = value * 10 ** len(piece) + int(piece)
    return value


def _text(value: int) -> str:
    if value < _CHUNK_POWER:
        return str(value)
    high, low = divmod(value, _CHUNK_POWER)
    return _text(high) + str(low).rjust(_CHUNK, "0")


def _scaled(digits: str, power: int, base: int) -> LongDouble | None:
    """``digits`` (in ``base``) times ``base**power``, rounded, without building absurd powers (``None``: underflow)."""
    digits = digits.lstrip("0")
    if not digits:
        return Fraction(0)
    mantissa = _int(digits) if base == 10 else int(digits, 16)
    # Digits of the mantissa plus the exponent bound the magnitude: far out of
    # range, answer without computing 10**1000000.
    bits_per_digit = 3.33 if base == 10 else 1.0
    magnitude = (len(digits) if base == 10 else mantissa.bit_length()) + power
    if magnitude * bits_per_digit > _MAX_EXPONENT + 70:
        return _INF
    if magnitude * bits_per_digit < _MIN_EXPONENT - (_PRECISION + 70):
        return None
    exact = Fraction(mantissa) * (Fraction(base) ** power)
    return _round(exact)


def parse(text: bytes) -> LongDouble | None:
    """The number ``text`` holds, as Redis reads it (``string2ld``), or ``None`` when Redis refuses it.

    Refused: empty text, 5 KiB or more, leading or trailing spaces, anything
    ``strtold`` does not read whole, NaN, a value beyond the range (which
    ``strtold`` gives as infinity with ``ERANGE``) and one so small it rounds
    to zero. Written infinities (``inf``, ``-Infinity``) are accepted.
    """
    if not text or len(text) >= _MAX_CHARS:
        return None
    infinity = _INFINITY.fullmatch(text)
    if infinity:
        return -_INF if infinity.group(1) == b"-" else _INF
    sign = 1
    hexadecimal = _HEX.fullmatch(text)
    if hexadecimal:
        signs, whole, fraction, exponent = hexadecimal.groups()
        fraction = fraction or b""
        if not whole and not fraction:
            return None  # "0x" alone: strtold reads the "0" and stops at the "x"
        power = _exponent(exponent) - 4 * len(fraction)
        value = _scaled((whole + fraction).decode(), power, 2)
    else:
        decimal = _DECIMAL.fullmatch(text)
        if not decimal:
            return None
        signs, whole, fraction, exponent = decimal.groups()
        fraction = fraction or b""
        if not whole and not fraction:
            return None
        power = _exponent(exponent) - len(fraction)
        value = _scaled((whole + fraction).decode(), power, 10)
    if signs == b"-":
        sign = -1
    if value is None or (value == 0 and _nonzero_digits(text)):
        return None  # an underflow: strtold gives 0 with ERANGE, which Redis refuses
    if isinstance(value, float):
        return None  # an overflow: strtold gives HUGE_VALL with ERANGE
    return sign * value


def _exponent(text: bytes | None) -> int:
    # An exponent of thousands of digits means over- or underflow whatever the
    # mantissa (which is shorter than 5 KiB): clamp it before converting.
    if not text:
        return 0
    negative = text.startswith(b"-")
    digits = text.lstrip(b"+-").lstrip(b"0") or b"0"
    value = int(digits) if len(digits) <= 9 else 10**9
    return -value if negative else value


def _nonzero_digits(text: bytes) -> bool:
    mantissa = re.split(rb"[eEpP]", text.lower().removeprefix(b"-").removeprefix(b"+").removeprefix(b"0x"))[0]
    return any(c not in b"0." for c in mantissa)


def add(a: LongDouble, b: LongDouble) -> LongDouble | None:
    """``a + b`` rounded once, as the hardware adds; ``None`` for NaN (``inf - inf``)."""
    if isinstance(a, float) or isinstance(b, float):
        total = float(a) + float(b)
        return None if total != total else total
    return _round(a + b)


def format_human(value: LongDouble) -> bytes:
    """``value`` as Redis prints it for INCRBYFLOAT: ``"%.17Lf"``, trailing zeros and point removed."""
    if isinstance(value, float):
        return b"inf" if value > 0 else b"-inf"
    scaled = value * 10**17
    quotient, remainder = divmod(abs(scaled.numerator), scaled.denominator)
    if 2 * remainder > scaled.denominator or (2 * remainder == scaled.denominator and quotient & 1):
        quotient += 1
    digits = _text(quotient).rjust(18, "0")
    text = f"{digits[:-17]}.{digits[-17:]}".rstrip("0").rstrip(".")
    if value < 0 and text != "0":
        text = "-" + text
    return text.encode()
