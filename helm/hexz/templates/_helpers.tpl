{{/*
Names, labels and the small decisions several templates share.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "hexz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The resource name prefix: fullnameOverride, else RELEASE-NAME (just RELEASE when it already contains
the chart name). 63 characters at most (DNS labels).
*/}}
{{- define "hexz.fullname" -}}
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

{{/* chart label: NAME-VERSION. */}}
{{- define "hexz.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource of the release. */}}
{{- define "hexz.labels" -}}
helm.sh/chart: {{ include "hexz.chart" . }}
app.kubernetes.io/name: {{ include "hexz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the gateway's resources. */}}
{{- define "hexz.gatewayLabels" -}}
{{ include "hexz.labels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{/*
Labels that select the gateway pods; the component keeps the sidecar example's pod out of the
Service. Never change them on upgrade: a Deployment's selector is immutable.
*/}}
{{- define "hexz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hexz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "hexz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hexz.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference; the tag defaults to the chart's appVersion. */}}
{{- define "hexz.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* "true" when the gateway reads a directory in the container (then archivesVolume is mounted there). */}}
{{- define "hexz.localStorage" -}}
{{- if not (hasPrefix "s3://" .Values.config.storage) }}true{{ end }}
{{- end }}

{{/* "true" when the chart creates its Secret: no existingSecret, and something to keep in it. */}}
{{- define "hexz.createSecret" -}}
{{- if and (not .Values.existingSecret) (or .Values.s3.accessKeyId .Values.auth.tokens .Values.encryption.keys .Values.encryption.passphrases) }}true{{ end }}
{{- end }}

{{/* The Secret holding credentials, tokens and keys: existingSecret or the chart's; empty when none. */}}
{{- define "hexz.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else if include "hexz.createSecret" . }}
{{- include "hexz.fullname" . }}
{{- end }}
{{- end }}

{{/* "true" when the gateway gets a key directory: keys or passphrases given, or an existing Secret that may hold some. */}}
{{- define "hexz.keyDir" -}}
{{- if or .Values.existingSecret .Values.encryption.keys .Values.encryption.passphrases }}true{{ end }}
{{- end }}

{{/* Where the trusted public keys are mounted, in the gateway and in the sidecar example. */}}
{{- define "hexz.trustedKeysDir" -}}
/etc/hexz/trusted-keys
{{- end }}

{{/* "true" when trusted keys are configured (from any of the three sources). */}}
{{- define "hexz.trustedKeys" -}}
{{- if or .Values.trustedKeys.keys .Values.trustedKeys.configMap .Values.trustedKeys.secret }}true{{ end }}
{{- end }}

{{/*
The trusted keys' volume: the chart's ConfigMap (trustedKeys.keys), or the existing ConfigMap or
Secret. Public keys: world-readable is fine (hexz checks permissions of private keys only).
*/}}
{{- define "hexz.trustedKeysVolume" -}}
- name: trusted-keys
{{- if .Values.trustedKeys.secret }}
  secret:
    secretName: {{ .Values.trustedKeys.secret }}
{{- else }}
  configMap:
    name: {{ default (printf "%s-trusted-keys" (include "hexz.fullname" .)) .Values.trustedKeys.configMap }}
{{- end }}
{{- end }}

{{/* The container side: the volume read-only at the trusted-keys directory. */}}
{{- define "hexz.trustedKeysMount" -}}
- name: trusted-keys
  mountPath: {{ include "hexz.trustedKeysDir" . }}
  readOnly: true
{{- end }}

{{/* The variable that makes hexz (serve and mount alike) refuse archives not signed by a trusted key. */}}
{{- define "hexz.trustedKeysEnv" -}}
- name: HEXZ_TRUSTED_KEYS
  value: {{ include "hexz.trustedKeysDir" . }}
{{- end }}

{{/*
Files installed from the Secret into a memory volume by the gateway's init container: keys and
passphrases (NAME.key / NAME.passphrase, with "__" standing for "/" in NAME) into keys/, the token file
as auth-tokens. The copies belong to the gateway's user with mode 0400: hexz refuses key files that
group or others can read, and a Secret volume cannot provide that to a non-root user (its files belong
to root, and fsGroup adds group read). Arguments: $1 the Secret volume, $2 the memory volume, $3 "auth"
when the token file is required.
*/}}
{{- define "hexz.installSecretsScript" -}}
set -eu
umask 077
src="$1"; dest="$2"
mkdir -p "$dest/keys"
for f in "$src"/*.key "$src"/*.passphrase; do
  [ -e "$f" ] || continue
  name=$(basename "$f" | sed 's#__#/#g')
  mkdir -p "$(dirname "$dest/keys/$name")"
  cat "$f" > "$dest/keys/$name"
  chmod 0400 "$dest/keys/$name"
  echo "installed key file keys/$name"
done
if [ "${3:-}" = auth ]; then
  [ -s "$src/auth-tokens" ] || { echo "auth is enabled but the Secret has no auth-tokens key" >&2; exit 1; }
  cat "$src/auth-tokens" > "$dest/auth-tokens"
  chmod 0400 "$dest/auth-tokens"
  echo "installed auth-tokens"
fi
{{- end }}

{{/* The non-secret gateway settings (the ConfigMap's data; also hashed into a pod annotation). */}}
{{- define "hexz.configData" -}}
HEXZ_STORAGE: {{ .Values.config.storage | quote }}
HEXZ_HOST: {{ .Values.config.host | quote }}
HEXZ_PORT: {{ .Values.config.port | int | quote }}
HEXZ_HEALTH_PORT: {{ .Values.config.healthPort | int | quote }}
HEXZ_CACHE_SIZE: {{ .Values.config.cacheSize | quote }}
{{- if .Values.config.corsOrigins }}
HEXZ_CORS_ORIGINS: {{ join "," .Values.config.corsOrigins | quote }}
{{- end }}
HEXZ_CACHE_CONTROL: {{ .Values.config.cacheControl | quote }}
HEXZ_ARCHIVE_TTL_MS: {{ .Values.config.archiveTtlMs | int | quote }}
HEXZ_MAX_OPEN_ARCHIVES: {{ .Values.config.maxOpenArchives | int | quote }}
HEXZ_MAX_RANGES: {{ .Values.config.maxRanges | int | quote }}
HEXZ_PAGE_SIZE: {{ .Values.config.pageSize | int | quote }}
HEXZ_MAX_PAGE_SIZE: {{ .Values.config.maxPageSize | int | quote }}
HEXZ_REQUEST_TIMEOUT_MS: {{ .Values.config.requestTimeoutMs | int | quote }}
HEXZ_IDLE_TIMEOUT_MS: {{ .Values.config.idleTimeoutMs | int | quote }}
HEXZ_SHUTDOWN_TIMEOUT_MS: {{ .Values.config.shutdownTimeoutMs | int | quote }}
HEXZ_ETAG_CACHE_ENTRIES: {{ .Values.config.etagCacheEntries | int | quote }}
HEXZ_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
{{- include "hexz.s3Env" . }}
{{- end }}

{{/* S3 settings of the gateway, as NAME: "value" lines of the ConfigMap. */}}
{{- define "hexz.s3Env" -}}
{{- if .Values.s3.endpoint }}
HEXZ_S3_ENDPOINT: {{ .Values.s3.endpoint | quote }}
{{- end }}
{{- if .Values.s3.region }}
HEXZ_S3_REGION: {{ .Values.s3.region | quote }}
{{- end }}
{{- if kindIs "bool" .Values.s3.pathStyle }}
HEXZ_S3_PATH_STYLE: {{ ternary "1" "0" .Values.s3.pathStyle | quote }}
{{- end }}
{{- end }}

{{/* S3 credentials from the Secret as container env entries (optional keys: IRSA needs none). */}}
{{- define "hexz.s3CredentialsEnv" -}}
{{- $secret := include "hexz.secretName" . }}
{{- if and $secret (or .Values.existingSecret .Values.s3.accessKeyId) }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: AWS_ACCESS_KEY_ID
      optional: true
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: AWS_SECRET_ACCESS_KEY
      optional: true
{{- end }}
{{- end }}

{{/* The chart's Secret data (base64); also hashed into a pod annotation so a change rolls the pods. */}}
{{- define "hexz.secretData" -}}
{{- if .Values.s3.accessKeyId }}
AWS_ACCESS_KEY_ID: {{ .Values.s3.accessKeyId | b64enc | quote }}
AWS_SECRET_ACCESS_KEY: {{ required "s3.secretAccessKey is required with s3.accessKeyId" .Values.s3.secretAccessKey | b64enc | quote }}
{{- end }}
{{- if .Values.auth.tokens }}
auth-tokens: {{ printf "%s\n" (join "\n" .Values.auth.tokens) | b64enc | quote }}
metrics-token: {{ first .Values.auth.tokens | b64enc | quote }}
{{- end }}
{{- range $name, $key := .Values.encryption.keys }}
{{ printf "%s.key" (replace "/" "__" $name) }}: {{ printf "%s\n" $key | b64enc | quote }}
{{- end }}
{{- range $name, $passphrase := .Values.encryption.passphrases }}
{{ printf "%s.passphrase" (replace "/" "__" $name) }}: {{ printf "%s\n" $passphrase | b64enc | quote }}
{{- end }}
{{- end }}

{{/* Checks values.schema.json cannot express well; fail the render with a message naming the value. */}}
{{- define "hexz.validate" -}}
{{- if and .Values.auth.enabled (not .Values.existingSecret) (not .Values.auth.tokens) }}
{{- fail "auth.enabled needs auth.tokens, or existingSecret with an auth-tokens key" }}
{{- end }}
{{- if and .Values.s3.accessKeyId (not .Values.s3.secretAccessKey) }}
{{- fail "s3.accessKeyId needs s3.secretAccessKey" }}
{{- end }}
{{- if and (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both (null turns one off)" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.targetMemoryUtilizationPercentage) }}
{{- fail "autoscaling.enabled needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage" }}
{{- end }}
{{- $tk := .Values.trustedKeys }}
{{- if or (and $tk.keys $tk.configMap) (and $tk.keys $tk.secret) (and $tk.configMap $tk.secret) }}
{{- fail "trustedKeys: give keys, configMap or secret, not several" }}
{{- end }}
{{- if and (hasPrefix "s3://" .Values.config.storage) .Values.archivesVolume.existingClaim }}
{{- fail "archivesVolume.existingClaim is only used when config.storage is a directory, not s3://" }}
{{- end }}
{{- end }}

{{/*
The gateway container's env entries beyond the ConfigMap: S3 credentials, the key directory and the
token file installed by the init container, the trusted keys' directory, then extraEnv. Argument: dict with root (the chart
context) and installSecrets.
*/}}
{{- define "hexz.gatewayEnv" -}}
{{- $root := .root }}
{{- include "hexz.s3CredentialsEnv" $root }}
{{- if and .installSecrets (include "hexz.keyDir" $root) }}
- name: HEXZ_KEY_DIR
  value: /run/hexz/keys
{{- end }}
{{- if and .installSecrets $root.Values.auth.enabled }}
- name: HEXZ_AUTH_TOKEN_FILE
  value: /run/hexz/auth-tokens
{{- end }}
{{- if include "hexz.trustedKeys" $root }}
{{ include "hexz.trustedKeysEnv" $root }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
