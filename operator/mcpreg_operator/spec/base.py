"""What every spec and status model shares: wire naming, unknown fields, JSON integers, defaults of
sub-objects, references to Secrets."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr
from pydantic.alias_generators import to_camel

from mcpreg_operator.spec.identity import (
    CONFIGMAP_KEY_PATTERN,
    DNS1123_LABEL_MAX_LENGTH,
    DNS1123_LABEL_PATTERN,
    DNS1123_SUBDOMAIN_MAX_LENGTH,
    DNS1123_SUBDOMAIN_PATTERN,
)


class ResourceModel(BaseModel):
    """Base of the spec and status models.

    extra="ignore": a field this operator does not know was admitted by a newer CRD (or written by a
    newer operator), and must not make the object unreadable. The CRD stays strict regardless: its
    structural schema makes the API server prune unknown fields, and kubectl refuses them.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )


def object_default(factory: type[BaseModel], description: str) -> Any:
    """A sub-object that defaults to ``{}`` both in pydantic and in the CRD (whose nested defaults
    then fill it in, so ``kubectl get -o yaml`` shows the effective settings)."""
    return Field(default_factory=factory, description=description, json_schema_extra={"default": {}})


#: The API server's OpenAPI validation counts a whole float as an integer only within +-(2**53 - 1).
_MAX_JSON_FLOAT_INTEGER = float(2**53 - 1)


def _json_integer(value: Any) -> Any:
    # What the API server takes for an integer: a JSON integer, or a whole float such as 2.0 within
    # the exactly representable range; never a string or a boolean, which pydantic's lax mode would
    # otherwise convert.
    if isinstance(value, str | bool):
        raise ValueError("must be an integer")
    if isinstance(value, float) and not (value.is_integer() and abs(value) <= _MAX_JSON_FLOAT_INTEGER):
        raise ValueError("must be an integer")
    return value


#: An integer as JSON carries it. Scalars are typed strictly (this, StrictBool, StrictStr) because
#: the API server stores the JSON type the schema names, never a string pydantic would convert.
JsonInt = Annotated[int, BeforeValidator(_json_integer)]
#: A JsonInt the CRD declares as int32, as Kubernetes does for counts, ports and seconds.
JsonInt32 = Annotated[JsonInt, Field(json_schema_extra={"format": "int32"})]

NO_SPACE_PATTERN = r"^[^\x00-\x20\x7f]*$"
#: A string without spaces or control characters (an image reference, an audience, a claim name).
NoSpaceStr = Annotated[StrictStr, Field(pattern=NO_SPACE_PATTERN)]

DnsSubdomainName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=DNS1123_SUBDOMAIN_MAX_LENGTH,
        pattern=DNS1123_SUBDOMAIN_PATTERN,
    ),
]

#: A key of a ConfigMap's or Secret's data (what Kubernetes accepts as one).
ObjectKey = Annotated[str, Field(min_length=1, max_length=253, pattern=CONFIGMAP_KEY_PATTERN)]


#: A reference's namespace: there only so that a reference into another namespace is refused with a
#: message saying so (the operator compares it with the MCPRegistry's own, which no CEL rule can
#: see), instead of being pruned silently by the API server and read from the own namespace.
OWN_NAMESPACE_DESCRIPTION = (
    "Must be empty or the MCPRegistry's own namespace: references into other namespaces are refused "
    "(reason CrossNamespaceReference)."
)


def own_namespace_field() -> Any:
    return Field(
        default=None,
        max_length=DNS1123_LABEL_MAX_LENGTH,
        pattern=DNS1123_LABEL_PATTERN,
        description=OWN_NAMESPACE_DESCRIPTION,
    )


class NamespacedReference(ResourceModel):
    """A reference to an object that must be in the MCPRegistry's own namespace."""

    namespace: str | None = own_namespace_field()


class SecretReference(NamespacedReference):
    """A Secret in the MCPRegistry's own namespace."""

    name: DnsSubdomainName = Field(
        description="Name of the Secret, in the MCPRegistry's namespace (a DNS-1123 subdomain)."
    )
