{{/* Names and labels shared by every template of the chart. */}}

{{- define "redispair-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name when it already contains the chart name. */}}
{{- define "redispair-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "redispair-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "redispair-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "redispair-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "redispair-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: redispair
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "redispair-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "redispair-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator's image, which is also the default engine image. */}}
{{- define "redispair-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
RBAC rules: exactly the API calls the operator makes (docs/architecture.md lists each with its
reason; tests/packaging.rs fails when these rules and that list drift apart). Plain YAML in
each define, so the test can read them.
*/}}

{{/* Rules on the namespaced objects of the pairs (a ClusterRole, or a Role per watched namespace). */}}
{{- define "redispair-operator.pairRules" -}}
# The RedisPairs: watched (list, watch), request annotations removed once served (patch).
# finalizers/update is no call of ours: owner references with blockOwnerDeletion need it
# where the OwnerReferencesPermissionEnforcement admission plugin is on.
- apiGroups: [redispair.io]
  resources: [redispairs]
  verbs: [list, watch, patch]
- apiGroups: [redispair.io]
  resources: [redispairs/status]
  verbs: [patch]
- apiGroups: [redispair.io]
  resources: [redispairs/finalizers]
  verbs: [update]
# Base backups: listed per pass and watched, created by spec.backup.schedule, their status
# written (merge patch).
- apiGroups: [redispair.io]
  resources: [redispairbackups]
  verbs: [list, watch, create]
- apiGroups: [redispair.io]
  resources: [redispairbackups/status]
  verbs: [patch]
# Engine pods are managed directly (no StatefulSet): read per pass (get), watched, created,
# labels and the password annotation merged (patch), a lost or outdated one deleted.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, delete]
# Services: the read-write one read per pass (get), all watched, written by server-side apply
# (patch; an apply that creates the object is authorised as create too). Never deleted by
# hand: garbage collection does it.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch]
# Claims: watched, written by server-side apply (create, patch), a lost node's claim deleted.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [list, watch, create, patch, delete]
# Secrets: the pair's two read per pass (get), created when missing, never modified; every
# Secret watched by metadata only (list, watch), so a change reconciles the pair that names it.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create]
# The PodDisruptionBudget: server-side apply only (create, patch).
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [create, patch]
# Every transition is an Event (events.k8s.io/v1: created, then patched as a series).
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# The cert-manager Certificate of a pair with spec.tls.issuerRef: server-side apply only.
# Harmless where cert-manager is not installed (no such resource to grant).
- apiGroups: [cert-manager.io]
  resources: [certificates]
  verbs: [create, patch]
{{- end }}

{{/* Nodes are cluster-scoped: read per pass (get) and watched (a NotReady node triggers its pairs). */}}
{{- define "redispair-operator.nodeRules" -}}
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
{{- end }}

{{/* Leader election, in the operator's namespace: the Lease read, created, renewed (update with the resourceVersion). */}}
{{- define "redispair-operator.leaderRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
{{- end }}
