"""The offline ``mutation`` provider: children of a codec that differ only in its PARAMS.

No model is called. The parent's ``PARAMS`` and ``PARAM_RANGES`` literals are read with
:mod:`ast`, and each child changes one to three parameters:

* a numeric range ``(low, high)`` takes a Gaussian step of ``scale * (high - low)``, is
  clipped into the range (ints stay ints; floats are rounded to about a thousandth of the
  range) and always ends up different from the parent's value;
* a list of alternatives switches to a different alternative.

How many parameters a child changes is drawn with weights 6:3:1 for one, two, three, so
most children are small steps. When the caller passes ``repeat_from`` (the parent's own
parent, after the step between them lowered the BD-rate), the first child of the first
attempt repeats that step: each numeric parameter moves again by the same amount, clipped
into its range (a pattern move). The other children are drawn as above.

The child's source is the parent's with only the ``PARAMS`` dict literal rewritten (one key
per line, in the parent's key order); every other byte is the parent's. The children of a
parent depend only on the seed, the parent's text, ``count`` and ``attempt``: a fresh
:class:`random.Random` is seeded from the seed mixed with a SHA-256 of the parent. The
provider improves nothing by itself; the lab's measurements decide. The library never
prints.
"""

from __future__ import annotations

import ast
import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import TypeGuard

from aicodec.candidates.contract import PARAM_RANGES_NAME, PARAMS_NAME
from aicodec.errors import ConfigError, GenerationError, ProviderError
from aicodec.providers.base import Capabilities, ModelReply, Prompt, TrialScope
from aicodec.validation.params import top_assignment

NO_TUNABLES = "the parent has no PARAMS/PARAM_RANGES to mutate"
NOTHING_TO_CHANGE = "the parent's PARAM_RANGES leave no parameter that can change"

CHANGED_WEIGHTS = (6, 3, 1)  # relative odds of changing one, two or three parameters
TRIES_PER_CHILD = 50  # draws allowed per requested child before giving up on distinct ones
_STEP_TRIES = 8  # Gaussian draws before a numeric step falls back to a sure change
_FLOAT_RESOLUTION = 1000  # floats are rounded to about 1/1000 of their range
_INDENT = "    "
_LINE_END_RE = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Tunables:
    """A source's PARAMS and PARAM_RANGES, and where the PARAMS literal lies in its bytes."""

    params: dict[str, object]
    ranges: dict[str, object]
    data: bytes  # the source as UTF-8
    start: int  # byte offsets of the PARAMS dict literal (from its "{" to after its "}")
    end: int


class MutationProvider:
    """Offline provider that proposes parameter mutations of a parent codec."""

    name = "mutation"
    model = "params-mutation-v1"
    capabilities = Capabilities(
        writes_code_by_model=False,
        plans=False,
        proposes_locally=True,
        repeats_improving_steps=True,
        retries_duplicates=True,
        origin="mutation",
    )

    def __init__(self, seed: int = 0, *, scale: float = 0.25) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int | float):
            raise ConfigError(f"mutation scale must be a number, not {scale!r}")
        if not math.isfinite(scale) or scale <= 0:
            raise ConfigError(f"mutation scale must be a positive finite number, not {scale!r}")
        self.seed = int(seed)
        self.scale = float(scale)

    def propose(
        self,
        parent_source: str,
        count: int = 1,
        *,
        attempt: int = 0,
        repeat_from: str | None = None,
        scope: TrialScope | None = None,
    ) -> list[str]:
        """Up to ``count`` distinct children of the parent (fewer when its ranges run out).

        ``attempt`` opens another stream for the same parent (0 by default), so a search that
        mutates one parent again can ask for new children. ``repeat_from``, with attempt 0,
        makes the first child repeat the numeric step from that source to the parent. The
        random walk reads nothing from the store: ``scope`` is not used.
        GenerationError when the parent has no tunables or none of them can change.
        """
        if count < 1:
            return []
        tunables = read_tunables(parent_source, "parent")
        keys = [
            key
            for key, value in tunables.params.items()
            if key in tunables.ranges and _changeable(value, tunables.ranges[key])
        ]
        if not keys:
            raise GenerationError(NOTHING_TO_CHANGE)
        digest = hashlib.sha256(parent_source.encode("utf-8", "surrogatepass")).hexdigest()
        rand = random.Random(f"{self.seed}:{attempt}:{digest}")
        seen = {format_params(tunables.params)}
        children: list[str] = []
        if repeat_from is not None and attempt == 0:
            repeated = _repeated_step(tunables, repeat_from)
            if repeated is not None and format_params(repeated) not in seen:
                seen.add(format_params(repeated))
                children.append(with_params(tunables, format_params(repeated)))
        sizes = list(range(1, min(len(CHANGED_WEIGHTS), len(keys)) + 1))
        for _ in range(count * TRIES_PER_CHILD):
            if len(children) >= count:
                break
            changed = dict(tunables.params)
            size = rand.choices(sizes, weights=CHANGED_WEIGHTS[: len(sizes)])[0]
            for key in rand.sample(keys, size):
                changed[key] = _mutated(rand, changed[key], tunables.ranges[key], self.scale)
            literal = format_params(changed)
            if literal in seen:
                continue
            seen.add(literal)
            children.append(with_params(tunables, literal))
        return children

    def complete(self, prompt: Prompt) -> ModelReply:
        """Not offered: the mutation provider calls no model and answers no prompt."""
        raise ProviderError("the mutation provider calls no model; it answers no prompts")

    def priced(self) -> bool:
        """Always: it costs nothing."""
        return True


def _repeated_step(tunables: Tunables, earlier_source: str) -> dict[str, object] | None:
    """The parent's PARAMS moved again by the numeric step from ``earlier_source``."""
    try:
        earlier = _params_only(earlier_source, "earlier codec")
    except GenerationError:
        return None
    moved = dict(tunables.params)
    for key, value in tunables.params.items():
        before = earlier.get(key)
        bounds = _numeric_range(tunables.ranges.get(key))
        if bounds is None or not _is_number(value) or not _is_number(before):
            continue
        step = float(value) - float(before)
        if step == 0:
            continue
        low, high = bounds
        target = min(max(float(value) + step, low), high)
        if _int_range(bounds):
            moved[key] = round(target)
        else:
            digits = max(0, math.ceil(-math.log10((high - low) / _FLOAT_RESOLUTION)))
            moved[key] = float(round(target, digits))
    return moved if format_params(moved) != format_params(tunables.params) else None


def describe(parent_source: str, child_source: str) -> str:
    """Which parameters changed, e.g. ``quant_scale 1.0 -> 1.31, block 8 -> 16``.

    Meant for the generation's log, so it never raises: a source whose PARAMS cannot be
    read gives a sentence that says so.
    """
    try:
        old = _params_only(parent_source, "parent")
        new = _params_only(child_source, "child")
    except GenerationError as exc:
        return str(exc)
    parts: list[str] = []
    for key, value in old.items():
        if key not in new:
            parts.append(f"{key} removed (was {_literal(value)})")
        elif not _same(value, new[key]):
            parts.append(f"{key} {_literal(value)} -> {_literal(new[key])}")
    parts += [f"{key} added ({_literal(value)})" for key, value in new.items() if key not in old]
    return ", ".join(parts) if parts else "no parameter changed"


def format_params(params: dict[str, object]) -> str:
    """A PARAMS dict as a literal: one ``"key": value,`` line per entry, in the dict's order."""
    if not params:
        return "{}"
    body = "".join(
        f"{_INDENT}{_literal(key)}: {_literal(value)},\n" for key, value in params.items()
    )
    return "{\n" + body + "}"


# ------------------------------------------------------------------------ reading a source


def _parse(source: str, who: str) -> ast.Module:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line}: {getattr(exc, 'msg', exc)})" if line else f" ({exc})"
        raise GenerationError(f"the {who} does not parse{where}") from None


def _assigned(tree: ast.Module, name: str) -> ast.expr | None:
    """The value of the first direct module-level ``NAME = value`` (as the validator reads it)."""
    found = top_assignment(tree, name)
    return found[1] if found is not None else None


def _literal_dict(node: ast.expr, name: str, who: str) -> dict[str, object]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = None
    if not isinstance(node, ast.Dict) or not isinstance(value, dict):
        raise GenerationError(f"the {who}'s {name} is not a dict literal")
    return value


def _params_only(source: str, who: str) -> dict[str, object]:
    node = _assigned(_parse(source, who), PARAMS_NAME)
    if node is None:
        raise GenerationError(f"the {who} has no {PARAMS_NAME} literal")
    return _literal_dict(node, PARAMS_NAME, who)


def read_tunables(source: str, who: str) -> Tunables:
    tree = _parse(source, who)
    params_node = _assigned(tree, PARAMS_NAME)
    ranges_node = _assigned(tree, PARAM_RANGES_NAME)
    if params_node is None or ranges_node is None:
        raise GenerationError(NO_TUNABLES)
    params = _literal_dict(params_node, PARAMS_NAME, who)
    ranges = _literal_dict(ranges_node, PARAM_RANGES_NAME, who)
    data = source.encode("utf-8", "surrogatepass")
    starts = [0] + [match.end() for match in _LINE_END_RE.finditer(data)]
    assert params_node.end_lineno is not None and params_node.end_col_offset is not None
    # ast column offsets count UTF-8 bytes
    start = starts[params_node.lineno - 1] + params_node.col_offset
    end = starts[params_node.end_lineno - 1] + params_node.end_col_offset
    return Tunables(params, ranges, data, start, end)


def with_params(tunables: Tunables, literal: str) -> str:
    """The source with its PARAMS literal replaced, every other byte unchanged."""
    data = tunables.data
    child = data[: tunables.start] + literal.encode("utf-8") + data[tunables.end :]
    return child.decode("utf-8", "surrogatepass")


# ------------------------------------------------------------------------------- mutation


def _is_number(value: object) -> TypeGuard[int | float]:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _numeric_range(rng: object) -> tuple[float, float] | None:
    """``(low, high)`` when a range is two finite numbers with low <= high, else None."""
    if isinstance(rng, tuple) and len(rng) == 2 and all(_is_number(end) for end in rng):
        low, high = rng
        if low <= high:
            return low, high
    return None


def _int_range(rng: tuple[float, float]) -> bool:
    return all(isinstance(end, int) for end in rng)


def _same(a: object, b: object) -> bool:
    """Equal values, telling bools apart from the numbers they equal."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _changeable(value: object, rng: object) -> bool:
    """Whether a range holds a value other than the current one."""
    if isinstance(rng, list):
        return any(not _same(choice, value) for choice in rng)
    bounds = _numeric_range(rng)
    if bounds is None or not _is_number(value):
        return False
    low, high = bounds
    return high > low or not _same(value, low)


def _mutated(rand: random.Random, value: object, rng: object, scale: float) -> object:
    """A new value for one parameter, inside its range and different from ``value``."""
    if isinstance(rng, list):
        return rand.choice([choice for choice in rng if not _same(choice, value)])
    bounds = _numeric_range(rng)
    assert bounds is not None and _is_number(value)
    current = float(value)
    low, high = bounds
    sigma = scale * (high - low)
    if _int_range(bounds):
        ilow, ihigh = int(low), int(high)
        for _ in range(_STEP_TRIES):
            new = min(max(round(current + rand.gauss(0.0, sigma)), ilow), ihigh)
            if not _same(new, value):
                return new
        # a sure change: the nearest integer on a side that has room
        base = min(max(round(current), ilow), ihigh)
        if not _same(base, value):
            return base
        if base == ilow:
            return base + 1
        if base == ihigh:
            return base - 1
        return base + rand.choice((-1, 1))
    digits = max(0, math.ceil(-math.log10((high - low) / _FLOAT_RESOLUTION))) if high > low else 0
    for _ in range(_STEP_TRIES):
        stepped = float(min(max(round(current + rand.gauss(0.0, sigma), digits), low), high))
        if not _same(stepped, value):
            return stepped
    # a sure change: the end of the range farther from the current value
    return float(high if current - low < high - current else low)


# ------------------------------------------------------------------------------ formatting


def _literal(value: object) -> str:
    """A Python literal for a plain value (strings in double quotes when they allow it)."""
    if isinstance(value, str):
        if '"' not in value and "\\" not in value and value.isprintable():
            return f'"{value}"'
        return repr(value)
    if isinstance(value, tuple):
        items = [_literal(item) for item in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(_literal(item) for item in value)}]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items())
        return "{" + pairs + "}"
    return repr(value)
