"""The text form of an activation spec, ``name(param=value, ...)``, parsed into the wire's
``Activation`` message.

    >>> spec = parse_activation("leaky_relu(negative_slope=0.2)")
    >>> spec.name, dict(spec.params)
    ('leaky_relu', {'negative_slope': 0.2})
    >>> str(parse_activation(" gelu( approximate = 'tanh' ) "))
    'gelu(approximate=tanh)'
    >>> parse_activation("softplus(beta=1, threshold=10)").canonical
    'softplus(threshold=10)'

The parser follows the core's (``src/activation_spec.cc``) rule for rule and message for
message: the same syntax, the same number grammar (C's strtod), the same checks of
ranges (finite; an int32 ``dim``; ``softplus`` beta and ``celu`` alpha nonzero; shrink
``lambd`` >= 0; ``hardtanh`` min_val <= max_val; ``threshold``'s two parameters
required), in the same order, so a spec is refused before any network traffic with the
server's own words. The shared test vectors in ``tests/vectors/activation_specs.json``
hold both SDKs to that.

The names of activations and parameters, and each parameter's type, are read from the
wire schema itself (the ``oneof kind`` of ``actserve.v1.Activation`` and its messages);
defaults, required parameters and constraints from ``actserve/v1/catalogue.json``, which
the build writes from the core's catalogue (``src/catalogue.cc``). Neither is copied here.
"""

import dataclasses
import decimal
import math
import re
from typing import Mapping, Tuple, Union

from google.protobuf import descriptor as _descriptor

from actserve._proto import catalogue, pb
from actserve.errors import invalid_argument

# Activations that reduce along a dimension instead of acting on each element.
NON_ELEMENTWISE = frozenset({"softmax", "log_softmax"})

ParamValue = Union[float, int, str]

_FD = _descriptor.FieldDescriptor
_MAX_QUOTED = 64
_MAX_NUMBER_CHARS = 64  # the core's parser refuses longer number tokens
_INT32 = (-2**31, 2**31 - 1)
# What the core strips around tokens (absl::StripAsciiWhitespace).
_WHITESPACE = " \t\n\v\f\r"


@dataclasses.dataclass(frozen=True)
class _Param:
    """One parameter of an activation: its type from the wire schema, its rules from the
    core's catalogue."""

    name: str
    kind: str  # "real", "integer", "choice" or "tensor"
    choices: Tuple[str, ...] = ()  # "choice" only, in enum-number order
    required: bool = False
    default: float = 0.0  # a choice's default is its index
    constraint: str = "any"  # "any", "nonzero" or "nonnegative"


def _choice_names(enum: _descriptor.EnumDescriptor) -> Tuple[str, ...]:
    # GeluApproximate's values are GELU_APPROXIMATE_NONE, GELU_APPROXIMATE_TANH: the text
    # form uses what follows the enum's own name in UPPER_SNAKE_CASE.
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
    values = sorted(enum.values, key=lambda value: value.number)
    return tuple(value.name[len(prefix):].lower() for value in values)


def _kind_of_field(field: _descriptor.FieldDescriptor) -> Tuple[str, Tuple[str, ...]]:
    if field.type == _FD.TYPE_DOUBLE:
        return "real", ()
    if field.type == _FD.TYPE_INT32:
        return "integer", ()
    if field.type == _FD.TYPE_ENUM:
        return "choice", _choice_names(field.enum_type)
    if field.type == _FD.TYPE_MESSAGE and field.message_type.name == "Tensor":
        return "tensor", ()
    raise TypeError(f"actserve: unexpected field type in Activation: {field.full_name}")


def _catalogue() -> Mapping[str, Tuple[_Param, ...]]:
    """The wire schema's activations and parameters, with the core catalogue's rules.
    Raises ImportError when the two disagree (a package built from mismatched sources)."""
    rules = {entry["name"]: entry["params"] for entry in catalogue["activations"]}
    oneof = pb.Activation.DESCRIPTOR.oneofs_by_name["kind"]
    result = {}
    for field in oneof.fields:
        params = []
        rule_list = rules.get(field.name)
        fields = field.message_type.fields
        if rule_list is None or [r["name"] for r in rule_list] != [f.name for f in fields]:
            raise ImportError(f"actserve: catalogue.json and activation.proto disagree on "
                              f"{field.name}; rebuild the package")
        for param_field, rule in zip(fields, rule_list):
            kind, choices = _kind_of_field(param_field)
            if kind != rule["type"] or choices != tuple(rule["choices"]):
                raise ImportError(f"actserve: catalogue.json and activation.proto disagree "
                                  f"on {field.name}.{param_field.name}; rebuild the package")
            params.append(_Param(param_field.name, kind, choices, rule["required"],
                                 float(rule["default"]), rule["constraint"]))
        result[field.name] = tuple(params)
    if list(result) != list(rules):
        raise ImportError("actserve: catalogue.json and activation.proto list different "
                          "activations; rebuild the package")
    return result


_CATALOGUE = _catalogue()

# Every activation name, in the wire's order (relu, relu6, leaky_relu, ...).
ACTIVATION_NAMES: Tuple[str, ...] = tuple(_CATALOGUE)


def _quote(text: str) -> str:
    # Error messages repeat user text: keep them bounded.
    if len(text) > _MAX_QUOTED:
        return f"'{text[:_MAX_QUOTED]}...'"
    return f"'{text}'"


def format_number(value: float) -> str:
    """``value`` as the core writes it (C++ ``std::to_chars`` without a format): the
    shortest digits that read back exactly, in plain or scientific notation, whichever
    is shorter (plain on a tie): ``10``, ``0.01``, ``-1``, ``1e+30``, ``1e-05``."""
    value = float(value)
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    # repr() gives the shortest round-trip digits; Decimal splits them from the exponent.
    _, digit_tuple, exponent = decimal.Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # digits before the decimal point
    if exponent >= 0:
        plain = digits + "0" * exponent
    elif point > 0:
        plain = digits[:point] + "." + digits[point:]
    else:
        plain = "0." + "0" * -point + digits
    scientific_exponent = point - 1
    scientific = (digits[0] + ("." + digits[1:] if len(digits) > 1 else "") + "e" +
                  ("-" if scientific_exponent < 0 else "+") +
                  f"{abs(scientific_exponent):02d}")
    return sign + (plain if len(plain) <= len(scientific) else scientific)


@dataclasses.dataclass(frozen=True)
class ActivationSpec:
    """An activation and the parameters the caller gave, already checked (names, types
    and ranges) against the core's rules.

    ``params`` maps each parameter the text named to a float (real parameters and the
    PReLU weight's one value), an int (softmax's dim) or a str (gelu's approximate);
    parameters left out take their defaults on the server, as ``to_proto`` leaves them
    unset. ``str(spec)`` writes the parameters as given; ``canonical`` is the core's
    canonical form.
    """

    name: str
    params: Mapping[str, ParamValue] = dataclasses.field(default_factory=dict)

    @property
    def elementwise(self) -> bool:
        """False for softmax and log_softmax, which reduce along ``dim``."""
        return self.name not in NON_ELEMENTWISE

    def __str__(self) -> str:
        if not self.params:
            return self.name
        parts = []
        for key, value in self.params.items():
            text = value if isinstance(value, str) else format_number(value)
            parts.append(f"{key}={text}")
        return f"{self.name}({', '.join(parts)})"

    def value(self, name: str) -> ParamValue:
        """The value of parameter ``name``: as given, else its default (a choice's name,
        an int for an integer parameter). Raises KeyError for a name the activation
        does not have, or a required parameter (never missing from a parsed spec)."""
        for param in _CATALOGUE[self.name]:
            if param.name != name:
                continue
            if name in self.params:
                return self.params[name]
            if param.required:
                raise KeyError(name)
            if param.kind == "choice":
                return param.choices[int(param.default)]
            return int(param.default) if param.kind == "integer" else param.default
        raise KeyError(name)

    @property
    def canonical(self) -> str:
        """The core's canonical text form (``FormatActivationSpec``): parameters equal to
        their default left out, required ones always written, in the catalogue's order,
        numbers as ``format_number`` writes them."""
        parts = []
        for param in _CATALOGUE[self.name]:
            if param.name not in self.params:
                continue
            value = self.params[param.name]
            if param.kind == "choice":
                if param.choices.index(value) == param.default and not param.required:
                    continue
                parts.append(f"{param.name}={value}")
            else:
                if not param.required and float(value) == param.default:
                    continue
                parts.append(f"{param.name}={format_number(value)}")
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    def with_params(self, **changes: ParamValue) -> "ActivationSpec":
        """This spec with some parameters replaced (already valid values)."""
        params = dict(self.params)
        params.update(changes)
        return ActivationSpec(self.name, params)

    def to_proto(self, weight=None):
        """The wire ``Activation``. ``weight``: a ``Tensor`` message for PReLU's weight,
        which replaces a ``weight=`` value of the text form (the caller converts that one
        value into the input's dtype)."""
        activation = pb.Activation()
        message = getattr(activation, self.name)
        message.SetInParent()  # marks the oneof even for activations without parameters
        for param in _CATALOGUE[self.name]:
            if param.name not in self.params:
                continue
            value = self.params[param.name]
            if param.kind == "choice":
                setattr(message, param.name, param.choices.index(value))
            elif param.kind == "tensor":
                continue  # built by the caller, in the input's dtype
            else:
                setattr(message, param.name, value)
        if weight is not None:
            message.weight.CopyFrom(weight)
        return activation


_HEX_PREFIX = re.compile(r"[+-]?0[xX]")


def _parse_number(text: str):
    # C's strtod, as the core's parser calls it on the whole token: decimal (with inf,
    # infinity and nan in any case), or hexadecimal with the 0x prefix.
    if not text or len(text) > _MAX_NUMBER_CHARS or "_" in text or text != text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        pass
    if not _HEX_PREFIX.match(text):
        return None
    try:
        return float.fromhex(text)
    except ValueError:
        return None


def _strip_quotes(token: str) -> str:
    if len(token) >= 2 and token[0] in "'\"" and token[-1] == token[0]:
        return token[1:-1]
    return token


def _param_names(name: str) -> str:
    params = _CATALOGUE[name]
    if not params:
        return "it takes no parameters"
    return "its parameters: " + ", ".join(param.name for param in params)


def _check_value(name: str, param: _Param, value: float) -> None:
    """The core's ValidateParam: finite, integral int32 / a choice's index, then the
    catalogue's constraint."""

    def invalid(what: str):
        return invalid_argument(
            f"{name}: {param.name} must be {what}, got {format_number(value)}")

    if not math.isfinite(value):
        raise invalid("finite")
    if param.kind == "integer" and (value != math.trunc(value) or
                                    not _INT32[0] <= value <= _INT32[1]):
        raise invalid("an int32")
    if param.kind == "choice" and (value != math.trunc(value) or
                                   not 0 <= value < len(param.choices)):
        raise invalid("one of " + ", ".join(param.choices))
    if param.constraint == "nonzero" and value == 0:
        raise invalid("nonzero")
    if param.constraint == "nonnegative" and value < 0:
        raise invalid(">= 0")


def parse_activation(text: str) -> ActivationSpec:
    """Parses the text form. Whitespace is allowed around tokens; a value may be quoted
    (``'tanh'`` or ``"tanh"``).

    Raises ``actserve.Error`` (INVALID_ARGUMENT) with the core's message for an unknown
    activation or parameter (the message lists the known ones), malformed text, a value
    that is not a number, a parameter given twice, a required parameter left out, or a
    value out of range (``softplus: beta must be nonzero, got 0``).
    """
    if not isinstance(text, str):
        raise invalid_argument(
            f"activation must be text such as 'relu' or 'elu(alpha=0.5)', got "
            f"{type(text).__name__}")
    rest = text.strip(_WHITESPACE)
    open_paren = rest.find("(")
    name = (rest if open_paren < 0 else rest[:open_paren]).strip(_WHITESPACE)
    params_of = _CATALOGUE.get(name)
    if params_of is None:
        raise invalid_argument(
            f"unknown activation {_quote(name)}; known: {', '.join(ACTIVATION_NAMES)}")
    given = []  # (param, value as a number: a choice's index), in the text's order
    if open_paren >= 0:
        inside = rest[open_paren + 1:]
        if not inside.endswith(")"):
            raise invalid_argument(f"{name}: expected ')' at the end of {_quote(text)}")
        inside = inside[:-1].strip(_WHITESPACE)
        by_name = {param.name: param for param in params_of}
        # The core's loop: one assignment per comma, a comma with nothing after it
        # refused before the assignment in front of it is read.
        while inside:
            comma = inside.find(",")
            assignment = inside if comma < 0 else inside[:comma]
            inside = "" if comma < 0 else inside[comma + 1:]
            if (comma >= 0 and not inside.strip(_WHITESPACE)) or not assignment.strip(
                    _WHITESPACE):
                raise invalid_argument(f"{name}: empty parameter in {_quote(text)}")
            key, equals, value_text = assignment.partition("=")
            if not equals:
                raise invalid_argument(
                    f"{name}: expected name=value, got "
                    f"{_quote(assignment.strip(_WHITESPACE))}")
            key = key.strip(_WHITESPACE)
            value_text = _strip_quotes(value_text.strip(_WHITESPACE))
            param = by_name.get(key)
            if param is None:
                raise invalid_argument(
                    f"{name}: unknown parameter {_quote(key)}; {_param_names(name)}")
            if param.kind == "choice":
                if value_text not in param.choices:
                    raise invalid_argument(
                        f"{name}: {param.name} must be one of {', '.join(param.choices)}, "
                        f"got {_quote(value_text)}")
                given.append((param, float(param.choices.index(value_text))))
                continue
            number = _parse_number(value_text)
            if number is None:
                raise invalid_argument(
                    f"{name}: {param.name} must be a number, got {_quote(value_text)}")
            given.append((param, number))
    return _make_spec(name, given)


def _make_spec(name: str, given) -> ActivationSpec:
    """The core's MakeActivationSpec and ValidateActivationSpec: duplicates, required
    parameters, then every parameter's range in catalogue order (defaults included), then
    hardtanh's min_val <= max_val."""
    values = {}
    for param, value in given:
        if param.name in values:
            raise invalid_argument(f"{name}: parameter {param.name} given twice")
        values[param.name] = value
    for param in _CATALOGUE[name]:
        if param.name not in values and param.required:
            raise invalid_argument(f"{name}: parameter {param.name} is required")
    for param in _CATALOGUE[name]:
        _check_value(name, param, values.get(param.name, param.default))
    if name == "hardtanh":
        low = values.get("min_val", _default(name, "min_val"))
        high = values.get("max_val", _default(name, "max_val"))
        if low > high:
            raise invalid_argument(f"hardtanh: min_val ({format_number(low)}) must be <= "
                                   f"max_val ({format_number(high)})")
    params = {}
    for param, _ in given:
        value = values[param.name]
        if param.kind == "choice":
            params[param.name] = param.choices[int(value)]
        elif param.kind == "integer":
            params[param.name] = int(value)
        else:
            params[param.name] = value
    return ActivationSpec(name, params)


def _default(name: str, param_name: str) -> float:
    return next(p.default for p in _CATALOGUE[name] if p.name == param_name)


def parameter_names(name: str) -> Tuple[str, ...]:
    """The parameter names of activation ``name`` in wire order (``()`` for relu).
    Raises ``actserve.Error`` for an unknown name."""
    if name not in _CATALOGUE:
        raise invalid_argument(
            f"unknown activation {_quote(name)}; known: {', '.join(ACTIVATION_NAMES)}")
    return tuple(param.name for param in _CATALOGUE[name])
