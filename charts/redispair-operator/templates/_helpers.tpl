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

{{/* Rules on the namespaced objects of the pairs (a ClusterRole, or a Role per watched namespace). */}}
{{- define "redispair-operator.pairRules" -}}
# The RedisPairs themselves: read, request annotations removed once served (patch), status
# written (server-side apply), and the finalizers subresource (owner references with
# blockOwnerDeletion need it where OwnerReferencesPermissionEnforcement is on).
- apiGroups: [redispair.io]
  resources: [redispairs]
  verbs: [get, list, watch, patch]
- apiGroups: [redispair.io]
  resources: [redispairs/status]
  verbs: [get, patch]
- apiGroups: [redispair.io]
  resources: [redispairs/finalizers]
  verbs: [update]
# The engine pods are managed directly (no StatefulSet): the operator creates them, replaces
# a lost one and deletes its claim when the data is gone. Everything is written with
# server-side apply (patch); nothing needs update.
- apiGroups: [""]
  resources: [pods, services, persistentvolumeclaims]
  verbs: [get, list, watch, create, patch, delete]
# The password Secret: created when missing, never deleted by hand (garbage collection
# removes it with the pair through its owner reference).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# Every transition is an Event.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
