{{/* Names ----------------------------------------------------------------------------------- */}}

{{- define "consentry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 30 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every resource name: at most 30 characters, so that suffixes such as
     "-crawl-<job>-<hash>" and KubeRay's "-head-svc" stay within Kubernetes' limits. */}}
{{- define "consentry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 30 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 30 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 30 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "consentry.rayClusterName" -}}
{{- printf "%s-ray" (include "consentry.fullname" .) -}}
{{- end -}}

{{- define "consentry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "consentry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "consentry.secretName" -}}
{{- default (printf "%s-credentials" (include "consentry.fullname" .)) .Values.credentials.existingSecret -}}
{{- end -}}

{{- define "consentry.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "consentry.gpuImage" -}}
{{- printf "%s:%s%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) .Values.image.gpuTagSuffix -}}
{{- end -}}

{{/* Labels ---------------------------------------------------------------------------------- */}}

{{- define "consentry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "consentry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "consentry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "consentry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: consentry
{{- end -}}

{{/* Usage: include "consentry.componentLabels" (list $ "api") */}}
{{- define "consentry.componentLabels" -}}
{{ include "consentry.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "consentry.componentSelector" -}}
{{ include "consentry.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Pod metadata: component labels, extra labels, config/secret checksums so that pods roll
     when settings change. Usage: include "consentry.podMetadata" (list $ "api") */}}
{{- define "consentry.podMetadata" -}}
{{- $ := index . 0 -}}
labels:
  {{- include "consentry.componentLabels" . | nindent 2 }}
  {{- with $.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include "consentry.configData" $ | sha256sum }}
  checksum/credentials: {{ include "consentry.credentialsData" $ | sha256sum }}
  {{- with $.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* Security --------------------------------------------------------------------------------- */}}

{{- define "consentry.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "consentry.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Settings -------------------------------------------------------------------------------- */}}

{{/* The ConfigMap's data: every non-secret CONSENTRY_* setting. */}}
{{- define "consentry.configData" -}}
CONSENTRY_HOME: /var/lib/consentry
CONSENTRY_LOG_JSON: {{ .Values.config.logJson | quote }}
CONSENTRY_LOG_LEVEL: {{ .Values.config.logLevel | default "INFO" | quote }}
CONSENTRY_KAFKA_BOOTSTRAP: {{ required "kafka.bootstrap is required: the Kafka bootstrap servers, host:port[,host:port]" .Values.kafka.bootstrap | quote }}
CONSENTRY_TOPIC_PREFIX: {{ .Values.kafka.topicPrefix | quote }}
CONSENTRY_KAFKA_SECURITY_PROTOCOL: {{ .Values.kafka.securityProtocol | default "PLAINTEXT" | quote }}
{{- with .Values.kafka.saslMechanism }}
CONSENTRY_KAFKA_SASL_MECHANISM: {{ . | quote }}
{{- end }}
{{- with .Values.kafka.username }}
CONSENTRY_KAFKA_USERNAME: {{ . | quote }}
{{- end }}
CONSENTRY_S3_ENDPOINT: {{ required "objectStore.endpoint is required: the S3/MinIO URL, http(s)://host:port" .Values.objectStore.endpoint | quote }}
CONSENTRY_S3_BUCKET: {{ .Values.objectStore.bucket | default "consentry" | quote }}
CONSENTRY_S3_REGION: {{ .Values.objectStore.region | default "us-east-1" | quote }}
CONSENTRY_MILVUS_URI: {{ required "milvus.uri is required: the Milvus URL, http(s)://host:port" .Values.milvus.uri | quote }}
CONSENTRY_MODEL_PACK: {{ .Values.model.pack | quote }}
CONSENTRY_MODEL_DEVICE: "cpu"
CONSENTRY_INGEST_WORKERS: {{ .Values.ingest.workers | quote }}
CONSENTRY_INGEST_WORKER_CPUS: {{ .Values.ingest.workerCpus | quote }}
CONSENTRY_INGEST_WORKER_GPUS: {{ .Values.ingest.workerGpus | quote }}
CONSENTRY_API_HOST: "0.0.0.0"
CONSENTRY_API_PORT: {{ .Values.api.port | quote }}
CONSENTRY_ALLOW_PRIVATE_NETWORKS: "false"
{{- range $k, $v := .Values.config.extraEnv }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/* What the chart's Secret holds (also hashed into pod annotations). */}}
{{- define "consentry.credentialsData" -}}
{{- if .Values.credentials.existingSecret -}}
existingSecret: {{ .Values.credentials.existingSecret }}
{{- else -}}
CONSENTRY_S3_ACCESS_KEY: {{ .Values.credentials.s3AccessKey | default "" | b64enc | quote }}
CONSENTRY_S3_SECRET_KEY: {{ .Values.credentials.s3SecretKey | default "" | b64enc | quote }}
{{- with .Values.credentials.kafkaPassword }}
CONSENTRY_KAFKA_PASSWORD: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.credentials.milvusToken }}
CONSENTRY_MILVUS_TOKEN: {{ . | b64enc | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* env / envFrom of every Consentry container: the ConfigMap plus each credential by
     secretKeyRef (S3 keys required, Kafka password and Milvus token optional). */}}
{{- define "consentry.env" -}}
{{- $secret := include "consentry.secretName" . -}}
{{- $own := not .Values.credentials.existingSecret -}}
{{- $keys := .Values.credentials.keys -}}
envFrom:
  - configMapRef:
      name: {{ include "consentry.fullname" . }}-config
env:
  - name: HOME
    value: /tmp
  - name: RAY_USAGE_STATS_ENABLED
    value: "0"
  - name: CONSENTRY_S3_ACCESS_KEY
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: {{ ternary "CONSENTRY_S3_ACCESS_KEY" $keys.s3AccessKey $own }}
  - name: CONSENTRY_S3_SECRET_KEY
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: {{ ternary "CONSENTRY_S3_SECRET_KEY" $keys.s3SecretKey $own }}
  - name: CONSENTRY_KAFKA_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: {{ ternary "CONSENTRY_KAFKA_PASSWORD" $keys.kafkaPassword $own }}
        optional: true
  - name: CONSENTRY_MILVUS_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: {{ ternary "CONSENTRY_MILVUS_TOKEN" $keys.milvusToken $own }}
        optional: true
{{- end -}}

{{/* Writable scratch space for a read-only root filesystem. */}}
{{- define "consentry.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
- name: home
  emptyDir:
    sizeLimit: 1Gi
{{- end -}}

{{- define "consentry.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /var/lib/consentry
{{- end -}}

{{/* The pod-level settings every Consentry pod shares (the ServiceAccount's token is never
     mounted; service links are off because a Service named "<release>-api" would otherwise
     inject CONSENTRY_API_PORT=tcp://... and break the settings). */}}
{{- define "consentry.podCommon" -}}
serviceAccountName: {{ include "consentry.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "consentry.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* nodeSelector / tolerations / affinity from one values block. */}}
{{- define "consentry.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The pod template of a crawl or retention Job.
     Usage: include "consentry.batchPodTemplate" (dict "root" $ "component" "crawl"
            "args" (list ...) "resources" $res "scheduling" $sched) */}}
{{- define "consentry.batchPodTemplate" -}}
{{- $ := .root -}}
metadata:
  {{- include "consentry.podMetadata" (list $ .component) | nindent 2 }}
spec:
  restartPolicy: Never
  {{- include "consentry.podCommon" $ | nindent 2 }}
  {{- with (include "consentry.scheduling" .scheduling | trim) }}{{ . | nindent 2 }}{{ end }}
  containers:
    - name: {{ .component }}
      image: {{ include "consentry.image" $ }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      {{- include "consentry.env" $ | nindent 6 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- include "consentry.containerSecurityContext" $ | nindent 8 }}
      volumeMounts:
        {{- include "consentry.volumeMounts" $ | nindent 8 }}
  volumes:
    {{- include "consentry.volumes" $ | nindent 4 }}
{{- end -}}

{{/* The face-model device of ingest: `model.device` when the ingest actors reserve GPUs
     (ingest.workerGpus > 0), else cpu. The driver passes its settings to the actors, so the
     driver and the GPU worker pods carry it; everything else uses cpu. */}}
{{- define "consentry.ingestDevice" -}}
{{- ternary .Values.model.device "cpu" (gt (float64 .Values.ingest.workerGpus) 0.0) -}}
{{- end -}}
