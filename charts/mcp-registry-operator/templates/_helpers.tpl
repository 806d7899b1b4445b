{{/* Names ---------------------------------------------------------------------------------------- */}}

{{- define "mcpreg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcpreg.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mcpreg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mcpreg.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels --------------------------------------------------------------------------------------- */}}

{{- define "mcpreg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcpreg.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mcpreg.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mcpreg.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: mcp-registry
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image --------------------------------------------------------------------------------------- */}}

{{- define "mcpreg.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "mcpreg.apiImage" -}}
{{- default (include "mcpreg.image" .) .Values.api.image -}}
{{- end -}}

{{/* Watched namespaces: exact names only (a Role cannot be granted in a glob). */}}
{{- define "mcpreg.watchNamespaces" -}}
{{- range .Values.watchNamespaces }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .) }}
{{- fail (printf "watchNamespaces: %q is not a namespace name (exact names only, no globs)" .) }}
{{- end }}
{{- end }}
{{- toJson (.Values.watchNamespaces | uniq) -}}
{{- end -}}

{{/*
RBAC rules for the namespaced resources the operator uses, granted cluster-wide (ClusterRole) or in
each watched namespace (Role). Each rule names who uses it; nothing here is a wildcard.
*/}}
{{- define "mcpreg.namespacedRules" -}}
# MCPRegistry: Kopf lists and watches it, and keeps its finalizer and bookkeeping annotations (merge
# patches); each reconcile pass reads its registry afresh by name.
- apiGroups: [mcpregistry.dev]
  resources: [mcpregistries]
  verbs: [get, list, watch, patch]
# Status is written by the operator only: each pass replaces it conditionally on the resourceVersion it
# read (update), and the finalizer marks Terminating (patch).
- apiGroups: [mcpregistry.dev]
  resources: [mcpregistries/status]
  verbs: [update, patch]
# Owned objects carry ownerReferences with blockOwnerDeletion, which clusters enforcing
# OwnerReferencesPermissionEnforcement allow only to whoever may update the owner's finalizers.
- apiGroups: [mcpregistry.dev]
  resources: [mcpregistries/finalizers]
  verbs: [update]
# Source ConfigMaps (read; watched one by one, by a metadata.name field selector), the data ConfigMaps
# the operator owns (created, replaced conditionally on their resourceVersion, deleted when a
# generation is superseded; watched by label), and each registry API's configuration ConfigMap
# <registry>-api-config (kept by server-side apply: patch). list/watch cannot be narrowed to those
# (names come from the MCPRegistries, and a label selector is no authorization boundary), and the API
# pods' Roles grant list/watch of named data ConfigMaps, which the operator may grant only if it holds
# them: docs/configmap-watches.md.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
# Git credentials (spec.source.git.auth.secretRef), S3 credentials (spec.storage.s3.credentialsSecretRef) and the
# signing key (spec.signing.secretRef):
# read by name only, never listed or watched.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# Events about MCPRegistries (Kopf posts core/v1 Events).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# Each MCPRegistry's registry API: ServiceAccount, Service, Deployment (its configuration ConfigMap is in
# the configmaps rule above), and the API pod's Role (get/list/watch of its own data ConfigMaps, by name)
# and RoleBinding. Kept in place by server-side apply (a patch
# that creates the object when it is missing, hence `create`), watched for drift, deleted when
# spec.api.enabled is false; the Deployment's status is read for status.apiStatus. Kubernetes lets the
# operator grant in a Role only what it holds itself, which the configmaps rule above covers: no
# `escalate` or `bind` verb is needed.
- apiGroups: [""]
  resources: [serviceaccounts, services]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [list, watch, create, patch, delete]
# The API's optional NetworkPolicy (spec.api.networkPolicy): kept by server-side apply, watched for
# drift, deleted when turned off.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch, create, patch, delete]
# The API Role of a registry with spec.api.auth.mode kubernetes lets its pods ask whether a caller may
# read (LocalSubjectAccessReview, in its own namespace); the operator may grant only what it holds.
- apiGroups: [authorization.k8s.io]
  resources: [localsubjectaccessreviews]
  verbs: [create]
# An HPA scaling the API Deployment takes over its replica count: the operator looks for one, read-only.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list]
{{- end -}}
