"""``spec.api.networkPolicy``: an optional NetworkPolicy letting only chosen pods reach the registry API.

The peers are Kubernetes label selectors with the meaning a NetworkPolicy gives them; the operator
copies them into the policy it owns (`workload.build_network_policy`). Kubernetes itself enforces
nothing: the cluster's network plugin does, if it supports NetworkPolicy (docs/api-workload.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictBool, StrictStr

from mcpreg_operator.spec.base import JsonInt, ResourceModel
from mcpreg_operator.spec.cel import CelRule, cel_matches, cel_rules
from mcpreg_operator.spec.identity import API_PORT

_LABEL_KEY_RE = (
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"  # optional DNS prefix
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
)
_LABEL_KEY_MAX = 317  # a DNS subdomain prefix (253), '/', a name (63)
_LabelKey = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=_LABEL_KEY_MAX,
        pattern=f"^{_LABEL_KEY_RE}$",
        description="A label key, e.g. app.kubernetes.io/name or team.",
    ),
]
_LabelValue = Annotated[
    StrictStr,
    Field(
        max_length=63,
        pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$",
        description="A label value.",
    ),
]

# The range before JsonInt's validator, so that pydantic writes it as minimum/maximum in the schema.
_Port = Annotated[
    Annotated[
        int, Field(ge=1, le=65535, description="A TCP port number.", json_schema_extra={"format": "int32"})
    ],
    *JsonInt.__metadata__,
]


#: How a label selector requirement compares a label with its values.
SelectorOperator = StrEnum(
    "SelectorOperator", {"IN": "In", "NOT_IN": "NotIn", "EXISTS": "Exists", "DOES_NOT_EXIST": "DoesNotExist"}
)


class LabelSelectorRequirement(ResourceModel):
    """One requirement of a label selector, as in Kubernetes (key, operator, values)."""

    model_config = cel_rules(
        CelRule(
            rule=("(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)"),
            message="values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
            reason="FieldValueInvalid",
            field_path=".values",
        )
    )

    key: _LabelKey
    operator: SelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[_LabelValue] = Field(
        default_factory=list, max_length=64, description="Values of In and NotIn."
    )


class LabelSelector(ResourceModel):
    """A Kubernetes label selector: every matchLabels pair and every requirement must hold; an empty
    selector selects everything."""

    model_config = cel_rules(
        CelRule(
            # The keys of a map cannot carry a pattern in a structural schema: checked here.
            rule=(
                "!has(self.matchLabels) || self.matchLabels.all(k, "
                f"size(k) <= {_LABEL_KEY_MAX} && {cel_matches('k', _LABEL_KEY_RE)})"
            ),
            message="matchLabels: every key must be a label key, e.g. team or app.kubernetes.io/name",
            reason="FieldValueInvalid",
            field_path=".matchLabels",
        )
    )

    match_labels: dict[StrictStr, _LabelValue] = Field(
        default_factory=dict, max_length=32, description="Labels that must have exactly these values."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=16, description="Requirements that must all hold."
    )


class NetworkPolicyPeer(ResourceModel):
    """Who may connect, as a NetworkPolicy peer: pods chosen by `podSelector` in the namespaces chosen
    by `namespaceSelector`. Only `podSelector`: those pods in the registry's own namespace. Only
    `namespaceSelector`: every pod of those namespaces."""

    model_config = cel_rules(
        CelRule(
            rule="has(self.namespaceSelector) || has(self.podSelector)",
            message="a peer needs a namespaceSelector, a podSelector or both",
            reason="FieldValueRequired",
        )
    )

    namespace_selector: LabelSelector | None = Field(
        default=None, description="Namespaces (by their labels, e.g. kubernetes.io/metadata.name) allowed."
    )
    pod_selector: LabelSelector | None = Field(default=None, description="Pods (by their labels) allowed.")


class NetworkPolicy(ResourceModel):
    """An optional NetworkPolicy <name>-api on the API pods: only the listed peers may reach them."""

    enabled: StrictBool = Field(
        default=False,
        description=(
            "Create the NetworkPolicy <name>-api. false (the default) removes it: anyone may connect."
        ),
    )
    allowed_from: list[NetworkPolicyPeer] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "Who may connect to the API. Empty (the default): every pod of the MCPRegistry's own "
            "namespace and nothing else."
        ),
        json_schema_extra={"default": []},
    )
    ports: list[_Port] = Field(
        default_factory=lambda: [API_PORT],
        min_length=1,
        max_length=16,
        description=(
            f"TCP ports of the API pods the peers may reach. The API listens on {API_PORT} only; list "
            "more only for containers you add to the pods (e.g. a service mesh's)."
        ),
        json_schema_extra={"default": [API_PORT]},
    )
