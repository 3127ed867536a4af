"""Exact decimal numbers: hyperparameter values and window bounds as strings.

Every bound a user gives is kept as the decimal string it was written as; arithmetic on
bounds (centres, widths, zooms) is decimal with :data:`PRECISION` digits, and a computed
bound is written back in one canonical form, so the same window always has the same text
and a store can find a level again by its window.
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Any

import numpy as np

from .errors import ConfigError

PRECISION = 60  # digits of decimal arithmetic on bounds and coordinates
SIGNIFICANT = 40  # digits kept in a computed log bound (see fractalsweep.views)
CONTEXT = Context(prec=PRECISION)
# Largest decimal exponent of a number a user gives: far past every dtype's range (float64's
# ends near 1e308), and far inside the decimal context's (1e999999), so that arithmetic on
# bounds (halving a width, a power of ten) cannot overflow.
EXPONENT = 10000


def parse(label: str, value: Any) -> Decimal:
    """A finite decimal from a str, int, float or Decimal (or a NumPy array's number), or a
    one-line error naming ``label``.

    A float means the decimal its shortest repr shows (0.1 is the decimal 0.1).

    >>> parse("x.lo", "1e-3"), parse("x.lo", 0.1)
    (Decimal('0.001'), Decimal('0.1'))
    >>> parse("x.lo", "abc")
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: x.lo = 'abc': not a decimal number
    """
    if isinstance(value, np.integer | np.floating):
        value = value.item()  # np.float32(0.1) is 0.10000000149011612, as float() says
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ConfigError(f"{label} = {value!r}: expected a number")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(f"{label} = {value!r}: not a decimal number") from None
    if not d.is_finite():
        raise ConfigError(f"{label} = {value!r}: must be finite")
    if d and abs(d.adjusted()) > EXPONENT:
        raise ConfigError(f"{label} = {value!r}: beyond any number a sweep can use (every "
                          f"dtype's lies within 1e-{EXPONENT} .. 1e{EXPONENT})")
    return d


def power_of_ten(label: str, exponent: Decimal) -> Decimal:
    """``10 ** exponent`` in :data:`CONTEXT`, or a one-line error past :data:`EXPONENT`.

    >>> power_of_ten("x.log10", Decimal(-3))
    Decimal('0.001')
    >>> power_of_ten("x.log10", Decimal(10 ** 6))
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: x.log10 = 10 ** 1e+6: beyond any number a sweep can use
    """
    if abs(exponent) > EXPONENT:  # in scientific notation: it may have hundreds of digits
        short = Context(prec=6).plus(exponent).normalize()
        raise ConfigError(f"{label} = 10 ** {short:g}: beyond any number a sweep can use")
    with localcontext(CONTEXT):
        return Decimal(10) ** exponent


def text(value: Decimal, digits: int | None = None) -> str:
    """The canonical string of a bound, rounded to ``digits`` significant digits if given.

    Trailing zeros are dropped, integers are written in fixed point.

    >>> text(Decimal("1E+3")), text(Decimal("0.2500")), text(Decimal(2).sqrt(CONTEXT), 5)
    ('1000', '0.25', '1.4142')
    """
    if digits is not None:
        value = Context(prec=digits).plus(value)
    value = value.normalize(CONTEXT)
    return f"{value:f}" if value.as_tuple().exponent > 0 else str(value)


def readable(bound: str) -> str:
    """A bound for a person to read: every digit of it, in scientific notation where that is
    much shorter (:func:`text` writes an integer in fixed point).

    >>> readable("1000"), readable("1" + "0" * 30), readable("1E-100"), readable("26.7375281")
    ('1000', '1e+30', '1e-100', '26.7375281')
    """
    scientific = f"{Decimal(bound).normalize(CONTEXT):e}"
    return scientific if len(scientific) + 4 < len(bound) else bound.replace("E", "e")


def is_sequence(value: Any) -> bool:
    """A tuple, a list, or a 1-D NumPy array, which is a sequence as they are."""
    return isinstance(value, (tuple, list)) or (isinstance(value, np.ndarray) and value.ndim == 1)


def pair(label: str, value: Any, parts: str, scalar_ok: bool = False) -> tuple[Any, Any]:
    """``value`` as a pair (a scalar is repeated if ``scalar_ok``), or a one-line error."""
    sequence = is_sequence(value)
    if scalar_ok and not sequence:
        return value, value
    if not sequence or len(value) != 2:
        either = "a number or " if scalar_ok else ""
        raise ConfigError(f"{label} = {value!r}: expected {either}a pair {parts}")
    return value[0], value[1]
