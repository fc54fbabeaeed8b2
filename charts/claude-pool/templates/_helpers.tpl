{{/* Chart name, cut to the 63 characters Kubernetes allows. */}}
{{- define "claude-pool.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "claude-pool.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "claude-pool.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "claude-pool.labels" -}}
helm.sh/chart: {{ include "claude-pool.chart" . }}
{{ include "claude-pool.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "claude-pool.selectorLabels" -}}
app.kubernetes.io/name: {{ include "claude-pool.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "claude-pool.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "claude-pool.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The managed secret: `<release>-auth` unless named. */}}
{{- define "claude-pool.secretName" -}}
{{- default (printf "%s-auth" .Release.Name) .Values.auth.secret.name }}
{{- end }}

{{/* Where a credential comes from: "<secret> <key>" (its own existing secret, or the managed /
user-made `<release>-auth`). */}}
{{- define "claude-pool.credentialRef" -}}
{{- $c := index . 0 }}{{- $root := index . 1 }}
{{- if $c.existingSecret }}{{ $c.existingSecret }} {{ default $c.key $c.existingSecretKey }}
{{- else }}{{ include "claude-pool.secretName" $root }} {{ $c.key }}{{ end }}
{{- end }}

{{/* A credential's value for the managed secret (base64), or "" when it has none. */}}
{{- define "claude-pool.credentialData" -}}
{{- if .valueBase64 }}{{ .valueBase64 }}{{ else if .value }}{{ .value | b64enc }}{{ end }}
{{- end }}

{{/* Several replicas share the store: they need PostgreSQL. */}}
{{- define "claude-pool.multiReplica" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/* Checks that fail the render with a message rather than deploy a server that refuses to start. */}}
{{- define "claude-pool.validate" -}}
{{- $pw := .Values.auth.adminPassword }}
{{- if and .Values.auth.secret.create (not $pw.existingSecret) }}
{{- if not (or $pw.value $pw.valueBase64) }}
{{- fail "auth.adminPassword: set a password (--set auth.adminPassword.value=...) or auth.adminPassword.existingSecret" }}
{{- end }}
{{- if and (not $pw.valueBase64) (eq $pw.value "changeme") }}
{{- fail "auth.adminPassword.value is the placeholder \"changeme\", which the server refuses: --set auth.adminPassword.value=<a real password>" }}
{{- end }}
{{- if and $pw.valueBase64 (eq ($pw.valueBase64 | b64dec) "changeme") }}
{{- fail "auth.adminPassword.valueBase64 encodes the placeholder \"changeme\", which the server refuses" }}
{{- end }}
{{- end }}
{{- if and (include "claude-pool.multiReplica" .) (not (or .Values.database.url .Values.database.existingSecret)) }}
{{- fail "replicaCount > 1 or autoscaling.enabled needs PostgreSQL: set database.url or database.existingSecret (SQLite is single-replica)" }}
{{- end }}
{{- if and .Values.database.url (not (or (hasPrefix "postgres://" .Values.database.url) (hasPrefix "postgresql://" .Values.database.url))) }}
{{- fail "database.url must be a postgres:// URL (SQLite is the default when it is empty)" }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add (int .Values.config.server.shutdownGraceSeconds) (int .Values.config.server.drainDelaySeconds)) }}
{{- fail "terminationGracePeriodSeconds must exceed config.server.shutdownGraceSeconds + config.server.drainDelaySeconds, or running turns are killed on every rollout" }}
{{- end }}
{{- if gt (int .Values.config.pool.minWorkers) (int .Values.config.pool.maxWorkers) }}
{{- fail "config.pool.minWorkers must not exceed config.pool.maxWorkers" }}
{{- end }}
{{- end }}

{{/* Resources: the values' when given, otherwise sized from the pool (about 250 Mi per warm worker). */}}
{{- define "claude-pool.resources" -}}
{{- if .Values.resources }}
{{- toYaml .Values.resources }}
{{- else }}
{{- $min := int .Values.config.pool.minWorkers }}
{{- $max := int .Values.config.pool.maxWorkers }}
requests:
  cpu: 250m
  memory: {{ add 150 (mul 250 $min) }}Mi
limits:
  memory: {{ add 150 (mul 250 $max) }}Mi
{{- end }}
{{- end }}

{{/* Pool autoscaling: busy workers per pod at the target ratio (busyRatio x maxWorkers), in milli-units. */}}
{{- define "claude-pool.busyTargetMilli" -}}
{{- mulf (float64 .Values.autoscaling.pool.busyRatio) (float64 .Values.config.pool.maxWorkers) 1000 | int }}
{{- end }}

{{/* The PromQL label selector of this release's pods (KEDA queries). */}}
{{- define "claude-pool.promSelector" -}}
{{- if .Values.autoscaling.keda.selector }}{{ tpl .Values.autoscaling.keda.selector . }}{{ else }}namespace="{{ .Release.Namespace }}",service="{{ include "claude-pool.fullname" . }}"{{ end }}
{{- end }}
