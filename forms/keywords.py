"""The validator class forms use: Draft 2020-12 plus custom formats and browser-faithful keywords.

Why not the stock validator: Python's ``re`` differs from the ECMA-262 regexes JSON Schema means
(``\\d`` matches full-width digits, ``$`` matches before a trailing newline), ``multipleOf``
with a float divisor fails on 0.07 / 0.01, and NaN / Infinity pass as numbers. Browsers and
this validator must agree on what passes.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache
from typing import Any, Iterator

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError
from stdnum.cn import uscc

FORMAT_CHECKER = FormatChecker()  # a copy of the default checkers; the global registry is untouched


@FORMAT_CHECKER.checks("gb11643")
def is_gb11643(instance: object) -> bool:
    """GB 11643 citizen ID number, exactly as written (18 chars, upper-case X): the identity check
    (``engine.accountability.privacy.id_number_problem``) on already-normalised input."""
    if not isinstance(instance, str):
        return True
    from engine.accountability.privacy import id_number_problem  # lazy: the engine imports forms

    return id_number_problem(instance) is None


@FORMAT_CHECKER.checks("uscc")
def is_uscc(instance: object) -> bool:
    """GB 32100 unified social credit code (统一社会信用代码) with its mod-31 check character."""
    if not isinstance(instance, str):
        return True
    return len(instance) == 18 and uscc.is_valid(instance) and instance == instance.upper()


@lru_cache(maxsize=1024)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """Compile a JSON Schema (ECMA-262) pattern so Python matches what a browser matches.

    ASCII classes (``\\d``, ``\\w``) and an unescaped ``$`` outside a class meaning end of input.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _pattern(validator: Any, patrn: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    limit = schema.get("maxLength")
    if isinstance(limit, int) and len(instance) > limit:
        return  # the length error says enough; never run a regex over a huge string
    if not ecma_regex(patrn).search(instance):
        yield ValidationError(f"does not match {patrn!r}")


def _multiple_of(validator: Any, divisor: Any, instance: Any,
                 schema: dict[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "number"):
        return
    try:
        failed = Fraction(str(instance)) % Fraction(str(divisor)) != 0
    except (ValueError, ZeroDivisionError, OverflowError):  # inf, nan
        failed = True
    if failed:
        yield ValidationError(f"is not a multiple of {divisor}")


def _is_number(checker: Any, instance: Any) -> bool:
    """A JSON number: NaN and infinities (which Python's json accepts) are not."""
    return Draft202012Validator.TYPE_CHECKER.is_type(instance, "number") and (
        not isinstance(instance, float) or math.isfinite(instance))


FormValidator = validators.extend(
    Draft202012Validator, validators={"pattern": _pattern, "multipleOf": _multiple_of},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _is_number),
)

__all__ = ["FORMAT_CHECKER", "FormValidator", "ecma_regex", "is_gb11643", "is_uscc"]
