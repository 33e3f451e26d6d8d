"""The text form of an activation spec, ``name(param=value, ...)``, parsed into the wire's
``Activation`` message.

    >>> spec = parse_activation("leaky_relu(negative_slope=0.2)")
    >>> spec.name, dict(spec.params)
    ('leaky_relu', {'negative_slope': 0.2})
    >>> str(parse_activation(" gelu( approximate = 'tanh' ) "))
    'gelu(approximate=tanh)'

The names of activations and parameters, and each parameter's type, are read from the
wire schema itself (the ``oneof kind`` of ``actserve.v1.Activation`` and its messages), so
this parser cannot drift from the proto. It checks what it must know to build the
message: the activation and parameter names, the syntax, that a number is a number, an
integer an int32 and a choice one of its values. Ranges (``softplus`` beta nonzero,
``hardtanh`` min_val <= max_val, a required ``threshold`` parameter, ...) are the
server's to check: its INVALID_ARGUMENT message names the parameter.
"""

import dataclasses
import math
import re
from typing import Mapping, Tuple, Union

from google.protobuf import descriptor as _descriptor

from actserve._proto import pb
from actserve.errors import invalid_argument

# Activations that reduce along a dimension instead of acting on each element.
NON_ELEMENTWISE = frozenset({"softmax", "log_softmax"})

ParamValue = Union[float, int, str]

_FD = _descriptor.FieldDescriptor
_MAX_QUOTED = 64


@dataclasses.dataclass(frozen=True)
class _Param:
    """One parameter of an activation, as the wire schema declares it."""

    name: str
    kind: str  # "real", "integer", "choice" or "tensor"
    choices: Tuple[str, ...] = ()  # "choice" only, in enum-number order


def _choice_names(enum: _descriptor.EnumDescriptor) -> Tuple[str, ...]:
    # GeluApproximate's values are GELU_APPROXIMATE_NONE, GELU_APPROXIMATE_TANH: the text
    # form uses what follows the enum's own name in UPPER_SNAKE_CASE.
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
    values = sorted(enum.values, key=lambda value: value.number)
    return tuple(value.name[len(prefix):].lower() for value in values)


def _param_from_field(field: _descriptor.FieldDescriptor) -> _Param:
    if field.type == _FD.TYPE_DOUBLE:
        return _Param(field.name, "real")
    if field.type == _FD.TYPE_INT32:
        return _Param(field.name, "integer")
    if field.type == _FD.TYPE_ENUM:
        return _Param(field.name, "choice", _choice_names(field.enum_type))
    if field.type == _FD.TYPE_MESSAGE and field.message_type.name == "Tensor":
        return _Param(field.name, "tensor")
    raise TypeError(f"actserve: unexpected field type in Activation: {field.full_name}")


def _catalogue() -> Mapping[str, Tuple[_Param, ...]]:
    oneof = pb.Activation.DESCRIPTOR.oneofs_by_name["kind"]
    return {
        field.name: tuple(_param_from_field(f) for f in field.message_type.fields)
        for field in oneof.fields
    }


_CATALOGUE = _catalogue()

# Every activation name, in the wire's order (relu, relu6, leaky_relu, ...).
ACTIVATION_NAMES: Tuple[str, ...] = tuple(_CATALOGUE)


def _quote(text: str) -> str:
    # Error messages repeat user text: keep them bounded.
    if len(text) > _MAX_QUOTED:
        return f"'{text[:_MAX_QUOTED]}...'"
    return f"'{text}'"


def _format_number(value: float) -> str:
    # Whole numbers plainly (10, not 10.0), like the server's text form.
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


@dataclasses.dataclass(frozen=True)
class ActivationSpec:
    """An activation and the parameters the caller gave (defaults are left to the server).

    ``params`` maps a parameter name to a float (real parameters and the PReLU weight's
    one value), an int (softmax's dim) or a str (gelu's approximate).
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
            text = value if isinstance(value, str) else _format_number(value)
            parts.append(f"{key}={text}")
        return f"{self.name}({', '.join(parts)})"

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


def _parse_number(text: str):
    # strtod's grammar as the core's parser accepts it: decimal, inf, nan, hex floats.
    if not text or "_" in text or text != text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float.fromhex(text)
    except ValueError:
        return None


def _strip_quotes(token: str) -> str:
    if len(token) >= 2 and token[0] in "'\"" and token[-1] == token[0]:
        return token[1:-1]
    return token


def _parse_value(name: str, param: _Param, text: str) -> ParamValue:
    if param.kind == "choice":
        value = _strip_quotes(text)
        if value not in param.choices:
            raise invalid_argument(
                f"{name}: {param.name} must be one of {', '.join(param.choices)}, "
                f"got {_quote(value)}")
        return value
    number = _parse_number(text)
    if number is None:
        raise invalid_argument(f"{name}: {param.name} must be a number, got {_quote(text)}")
    if param.kind == "integer":
        if not math.isfinite(number) or number != int(number) or not (
                -2**31 <= number < 2**31):
            raise invalid_argument(f"{name}: {param.name} must be an int32, got {_quote(text)}")
        return int(number)
    return number


def parse_activation(text: str) -> ActivationSpec:
    """Parses the text form. Whitespace is allowed around tokens; a choice may be quoted.

    Raises ``actserve.Error`` (INVALID_ARGUMENT) for an unknown activation or parameter
    (the message lists the known ones), a parameter given twice, malformed text, or a
    value that is not a number (an int32 for ``dim``; ``none`` or ``tanh`` for gelu's
    ``approximate``).
    """
    if not isinstance(text, str):
        raise invalid_argument(
            f"activation must be text such as 'relu' or 'elu(alpha=0.5)', got "
            f"{type(text).__name__}")
    rest = text.strip()
    open_paren = rest.find("(")
    name = (rest if open_paren < 0 else rest[:open_paren]).strip()
    params_of = _CATALOGUE.get(name)
    if params_of is None:
        raise invalid_argument(
            f"unknown activation {_quote(name)}; known: {', '.join(ACTIVATION_NAMES)}")
    if open_paren < 0:
        return ActivationSpec(name)
    inside = rest[open_paren + 1:]
    if not inside.endswith(")"):
        raise invalid_argument(f"{name}: expected ')' at the end of {_quote(text)}")
    inside = inside[:-1].strip()
    by_name = {param.name: param for param in params_of}
    params = {}
    if inside:
        assignments = inside.split(",")
        for assignment in assignments:
            if not assignment.strip():
                raise invalid_argument(f"{name}: empty parameter in {_quote(text)}")
            key, equals, value_text = assignment.partition("=")
            key = key.strip()
            if not equals:
                raise invalid_argument(
                    f"{name}: expected name=value, got {_quote(assignment.strip())}")
            param = by_name.get(key)
            if param is None:
                known = ", ".join(by_name) if by_name else "none"
                raise invalid_argument(
                    f"{name}: unknown parameter {_quote(key)}; its parameters: {known}")
            if key in params:
                raise invalid_argument(f"{name}: parameter {key} given twice")
            params[key] = _parse_value(name, param, value_text.strip())
    return ActivationSpec(name, params)


def parameter_names(name: str) -> Tuple[str, ...]:
    """The parameter names of activation ``name`` in wire order (``()`` for relu).
    Raises ``actserve.Error`` for an unknown name."""
    if name not in _CATALOGUE:
        raise invalid_argument(
            f"unknown activation {_quote(name)}; known: {', '.join(ACTIVATION_NAMES)}")
    return tuple(param.name for param in _CATALOGUE[name])
