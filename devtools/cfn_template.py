"""Reading sam/template.yaml as CloudFormation would: short-form tags, conditions, references.

Enough of CloudFormation's semantics to answer "which resources exist for these parameter
values, and does everything they reference exist too?" without deploying.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "sam" / "template.yaml"

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
        "AWS::NotificationARNs",
    }
)

NO_VALUE = {"Ref": "AWS::NoValue"}

_SEQUENCE_FUNCTIONS = ("And", "Equals", "If", "Not", "Or", "Join", "Select", "Split", "FindInMap")


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns !Ref, !Sub, !GetAtt... into their long JSON forms."""


def _construct(tag: str, function: str) -> None:
    def scalar_or_node(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if function == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {function: value}

    _CfnLoader.add_constructor(tag, scalar_or_node)


_construct("!Ref", "Ref")
_construct("!Condition", "Condition")
_construct("!GetAtt", "Fn::GetAtt")
for _name in ("Sub", "Base64", "GetAZs", "ImportValue", "Cidr", *_SEQUENCE_FUNCTIONS):
    _construct(f"!{_name}", f"Fn::{_name}")


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        template: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return template


class Stack:
    """The template as deployed with given parameter values (the rest at their defaults)."""

    def __init__(self, template: dict[str, Any], **overrides: str) -> None:
        self.template = template
        unknown = set(overrides) - set(template["Parameters"])
        if unknown:
            raise KeyError(f"not template parameters: {sorted(unknown)}")
        self.parameters: dict[str, Any] = {
            name: overrides.get(name, spec.get("Default"))
            for name, spec in template["Parameters"].items()
        }
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._truth(self.template["Conditions"][name])
        return self._conditions[name]

    def _truth(self, node: Any) -> bool:
        (function, args), *_ = node.items()
        if function == "Condition":
            return self.condition(args)
        if function == "Fn::Equals":
            left, right = (self.value(arg) for arg in args)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._truth(args[0])
        if function == "Fn::And":
            return all(self._truth(arg) for arg in args)
        if function == "Fn::Or":
            return any(self._truth(arg) for arg in args)
        raise ValueError(f"unsupported condition function {function}")

    def value(self, node: Any) -> Any:
        """A node with Ref-to-parameter and Fn::If resolved, AWS::NoValue removed."""
        if isinstance(node, dict) and len(node) == 1:
            (function, args), *_ = node.items()
            if function == "Ref" and args in self.parameters:
                return self.parameters[args]
            if function == "Fn::If":
                name, when_true, when_false = args
                return self.value(when_true if self.condition(name) else when_false)
        if isinstance(node, dict):
            resolved = {key: self.value(item) for key, item in node.items()}
            return {key: item for key, item in resolved.items() if item != NO_VALUE}
        if isinstance(node, list):
            return [item for item in map(self.value, node) if item != NO_VALUE]
        return node

    @cached_property
    def resources(self) -> dict[str, dict[str, Any]]:
        """Resources that exist for these parameters, with conditional branches resolved."""
        created = {}
        for name, resource in self.template["Resources"].items():
            condition = resource.get("Condition")
            if condition is None or self.condition(condition):
                created[name] = self.value(resource)
        return created

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in self.resources.items() if r["Type"] == resource_type}

    def properties(self, name: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[name]["Properties"]
        return props

    @cached_property
    def outputs(self) -> dict[str, Any]:
        return {
            name: self.value(output)
            for name, output in self.template.get("Outputs", {}).items()
            if "Condition" not in output or self.condition(output["Condition"])
        }

    def dangling_references(self) -> list[str]:
        """References from created resources/outputs to things that do not exist."""
        known = set(self.resources) | set(self.parameters) | PSEUDO_PARAMETERS
        return [
            f"{owner} -> {target}"
            for owner, node in [*self.resources.items(), *self.outputs.items()]
            for target in _references(node)
            if target not in known
        ]


def _references(node: Any) -> Iterator[str]:
    """Names referenced by Ref, Fn::GetAtt, DependsOn and ${...} in Fn::Sub."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                yield value[0]
            elif key == "DependsOn":
                yield from [value] if isinstance(value, str) else value
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else value
                yield from _sub_names(text, variables)
                yield from _references(variables)
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _sub_names(text: str, variables: Mapping[str, Any]) -> Iterator[str]:
    start = text.find("${")
    while start != -1:
        end = text.index("}", start)
        name = text[start + 2 : end]
        if not name.startswith("!") and name not in variables:
            yield name.split(".", 1)[0]
        start = text.find("${", end)


def statements(stack: Stack) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM-style policy statement in the stack: inline role policies and key policies."""
    for name, resource in stack.resources.items():
        props = resource.get("Properties", {})
        for policy in props.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield name, statement
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            for statement in props["PolicyDocument"]["Statement"]:
                yield name, statement
        if resource["Type"] == "AWS::KMS::Key":
            for statement in props["KeyPolicy"]["Statement"]:
                yield name, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def switch_combinations(template: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Every combination of the template's true/false parameters."""
    switches = [
        name
        for name, spec in template["Parameters"].items()
        if spec.get("AllowedValues") == ["true", "false"]
    ]
    for values in itertools.product(["true", "false"], repeat=len(switches)):
        yield dict(zip(switches, values, strict=True))
