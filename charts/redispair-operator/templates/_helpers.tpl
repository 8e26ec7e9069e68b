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
# The RedisPairs themselves: read, annotations consumed (switchover requests), status written,
# and the finalizer list (owner references with blockOwnerDeletion need it).
- apiGroups: [redispair.io]
  resources: [redispairs]
  verbs: [get, list, watch, update, patch]
- apiGroups: [redispair.io]
  resources: [redispairs/status]
  verbs: [get, update, patch]
- apiGroups: [redispair.io]
  resources: [redispairs/finalizers]
  verbs: [update]
# The engine pods are managed directly (no StatefulSet), so the operator creates, replaces and
# deletes them; their PVCs, Services, PDB and password Secret are owned children.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [services, persistentvolumeclaims]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, update, patch, delete]
# Every transition is an Event.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch, update]
{{- end }}
