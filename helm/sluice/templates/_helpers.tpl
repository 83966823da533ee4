{{/* Chart name. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: RELEASE-sluice, or RELEASE when it already contains the chart name. */}}
{{- define "sluice.fullname" -}}
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

{{/* Chart label value. */}}
{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels (stable across upgrades). */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the pod uses. */}}
{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "sluice.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* host:port for a listen address; IPv6 hosts get brackets. */}}
{{- define "sluice.listen" -}}
{{- $host := .host | toString }}
{{- if contains ":" $host }}
{{- printf "[%s]:%d" $host (int .port) }}
{{- else }}
{{- printf "%s:%d" $host (int .port) }}
{{- end }}
{{- end }}

{{/* Is the bundled registry in use? ("true" or "") */}}
{{- define "sluice.bundledRegistry" -}}
{{- $reg := .Values.config.schema_registry | default dict }}
{{- if eq (($reg.mode | default "bundled") | toString) "bundled" }}true{{ end }}
{{- end }}

{{/* Mount paths of the credentials. */}}
{{- define "sluice.secretsDir" -}}/etc/sluice/secrets{{- end }}
{{- define "sluice.postgresPasswordFile" -}}{{ include "sluice.secretsDir" . }}/postgres/password{{- end }}

{{/* The scrape job label. */}}
{{- define "sluice.jobLabel" -}}
{{- default (include "sluice.fullname" .) .Values.metrics.jobLabel }}
{{- end }}

{{/*
The configuration file: values.config plus what the chart owns (listen addresses, the
registry's data directory on the data volume, the mounted password file).
*/}}
{{- define "sluice.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $_ := set $cfg "admin" (dict "listen" (include "sluice.listen" (dict "host" .Values.listenAddress "port" .Values.ports.admin))) }}
{{- $reg := get $cfg "schema_registry" | default dict }}
{{- if include "sluice.bundledRegistry" . }}
{{- $_ := set $reg "listen" (include "sluice.listen" (dict "host" .Values.listenAddress "port" .Values.ports.registry)) }}
{{- if not $reg.data_dir }}
{{- $_ := set $reg "data_dir" (printf "%s/registry" (trimSuffix "/" .Values.persistence.mountPath)) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "schema_registry" $reg }}
{{- /* A directory Sluice creates inside the volume: it must own it (mode 0700). */}}
{{- if and $cfg.source $cfg.source.postgres (not $cfg.source.postgres.spill_dir) }}
{{- $_ := set $cfg.source.postgres "spill_dir" "/var/lib/sluice/spill/staging" }}
{{- end }}
{{- if .Values.postgres.passwordSecret.name }}
{{- if and $cfg.source $cfg.source.postgres }}
{{- $_ := set $cfg.source.postgres "password_file" (include "sluice.postgresPasswordFile" .) }}
{{- end }}
{{- end }}
{{- if .Values.kafka.saslSecret.name }}
{{- if and $cfg.sink $cfg.sink.kafka $cfg.sink.kafka.security $cfg.sink.kafka.security.sasl }}
{{- $sasl := $cfg.sink.kafka.security.sasl }}
{{- $_ := unset $sasl "password" }}
{{- $_ := set $sasl "password_file" (printf "%s/kafka-sasl/password" (include "sluice.secretsDir" .)) }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* An emptyDir source (flow style) with an optional size limit. */}}
{{- define "sluice.emptyDir" -}}
{{- if . }}{sizeLimit: {{ . | quote }}}{{ else }}{}{{ end }}
{{- end }}
