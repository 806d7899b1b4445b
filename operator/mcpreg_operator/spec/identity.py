"""Identity of the MCPRegistry resource (group, version, kind, names, annotations) and the limits
and name formats its schema enforces."""

from __future__ import annotations

import re

GROUP = "mcpregistry.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MCPRegistry"
PLURAL = "mcpregistries"
SINGULAR = "mcpregistry"
SHORT_NAMES = ("mcpreg",)
CATEGORIES = ("mcp",)
CRD_NAME = f"{PLURAL}.{GROUP}"

#: Annotation a user sets (to any new value) to ask for one sync; acknowledged in
#: ``status.lastManualSyncTrigger``.
SYNC_TRIGGER_ANNOTATION = f"{GROUP}/sync-trigger"

# --- limits --------------------------------------------------------------------------------------

#: Shortest accepted ``syncPolicy.interval``. A change check is cheap (``git ls-remote``), but below
#: this many registries polling at once turn the operator into a load generator for the git server.
MIN_SYNC_INTERVAL_SECONDS = 30
#: Longest accepted interval. Keeps the value far below Go's ``time.Duration`` overflow (~292 years).
MAX_SYNC_INTERVAL_SECONDS = 8760 * 3600
MAX_API_REPLICAS = 100
API_PORT = 8080  # the registry API's port (container and Service)
#: Bounds on filter lists: they keep CEL cost estimates finite and catch runaway generated manifests.
MAX_FILTER_PATTERNS = 100
MAX_FILTER_PATTERN_LENGTH = 256

# --- name formats --------------------------------------------------------------------------------

# DNS-1123 subdomain: the name format of Secrets and ConfigMaps.
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
# DNS-1123 label: the name format of namespaces.
DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_LABEL_MAX_LENGTH = 63
# ConfigMap data keys (k8s.io/apimachinery IsConfigMapKey).
CONFIGMAP_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
#: ``metadata.name`` of an MCPRegistry: a DNS-1035 label, so that ``<name>-api`` is a Service name.
REGISTRY_NAME_RE = r"[a-z]([-a-z0-9]*[a-z0-9])?"
#: ``<name>-api`` must be a Service name (DNS-1035 label, at most 63 characters).
MAX_REGISTRY_NAME_LENGTH = 59

_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_PATTERN)


def is_object_name(name: str) -> bool:
    """Whether ``name`` names a ConfigMap or Secret: a DNS-1123 subdomain, so never ``..``, never a
    ``/`` (which would take a request path past the object, into another namespace or resource)."""
    return len(name) <= DNS1123_SUBDOMAIN_MAX_LENGTH and _DNS1123_SUBDOMAIN.match(name) is not None
