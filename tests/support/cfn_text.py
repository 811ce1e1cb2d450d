"""CloudFormation template values written out as text, for comparing with expectations."""

from __future__ import annotations

from typing import Any


def rendered(value: Any) -> Any:
    """`value` with Fn::Join joined, Ref as ${Name} and Fn::GetAtt as ${Name.Attribute}
    (pseudo parameters: ${AWS::Region}), and every other value as it is."""
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(rendered(part)) for part in parts)
        if function == "Ref":
            return f"${{{argument}}}"
        if function == "Fn::GetAtt":
            return f"${{{'.'.join(argument)}}}"
    if isinstance(value, dict):
        return {key: rendered(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rendered(item) for item in value]
    return value
