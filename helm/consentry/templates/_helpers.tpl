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

{{- define "consentry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "consentry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image of every pod: repository@digest when image.digest is set (what runs can then not
     change under a moved tag), else repository:tag. */}}
{{- define "consentry.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "consentry.gpuImage" -}}
{{- if .Values.image.gpuDigest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.gpuDigest -}}
{{- else -}}
{{- printf "%s:%s%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) .Values.image.gpuTagSuffix -}}
{{- end -}}
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
  checksum/credentials: {{ list (include "consentry.credentialsData" $) $.Values.credentials.refs | toJson | sha256sum }}
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
CONSENTRY_KAFKA_PARTITIONS: {{ .Values.kafka.topics.partitions | quote }}
CONSENTRY_KAFKA_REPLICATION: {{ .Values.kafka.topics.replication | quote }}
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
CONSENTRY_MODEL_PACK: {{ include "consentry.modelPack" . | quote }}
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

{{/* The model pack, refused when its licence forbids the use unless the operator said otherwise. */}}
{{- define "consentry.modelPack" -}}
{{- $pack := .Values.model.pack -}}
{{- if and (has $pack (list "buffalo_s" "buffalo_l")) (not .Values.model.acceptNonCommercialLicence) -}}
{{- fail (printf "model.pack %s: InsightFace's %s weights are licensed for non-commercial research only. Use yunet_sface (MIT + Apache-2.0), or set model.acceptNonCommercialLicence=true if this deployment is non-commercial research" $pack $pack) -}}
{{- end -}}
{{- $pack -}}
{{- end -}}

{{/* Credentials ------------------------------------------------------------------------------ */}}

{{/* name -> [environment variable, key in the chart's own Secret, optional when not referenced] */}}
{{- define "consentry.credentialTable" -}}
s3AccessKey: [CONSENTRY_S3_ACCESS_KEY, CONSENTRY_S3_ACCESS_KEY, false]
s3SecretKey: [CONSENTRY_S3_SECRET_KEY, CONSENTRY_S3_SECRET_KEY, false]
kafkaPassword: [CONSENTRY_KAFKA_PASSWORD, CONSENTRY_KAFKA_PASSWORD, true]
milvusToken: [CONSENTRY_MILVUS_TOKEN, CONSENTRY_MILVUS_TOKEN, true]
{{- end -}}

{{/* Which credentials a workload reads (least credential): crawl jobs never see Milvus, the
     retention sweep never sees Kafka. */}}
{{- define "consentry.credentialsOf" -}}
{{- $all := list "s3AccessKey" "s3SecretKey" "kafkaPassword" "milvusToken" -}}
{{- $need := dict "api" $all "ingest" $all "ray" $all "crawl" (list "s3AccessKey" "s3SecretKey" "kafkaPassword") "retention" (list "s3AccessKey" "s3SecretKey" "milvusToken") -}}
{{- index $need . | toJson -}}
{{- end -}}

{{/* The credentials no per-credential reference covers: these live in existingSecret or the
     chart's own Secret. */}}
{{- define "consentry.unreferencedCredentials" -}}
{{- $out := list -}}
{{- range $name, $ref := .Values.credentials.refs -}}
{{- if not $ref.name -}}{{- $out = append $out $name -}}{{- end -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{/* What the chart's Secret holds (also hashed into pod annotations). */}}
{{- define "consentry.credentialsData" -}}
{{- $c := .Values.credentials -}}
{{- $rest := include "consentry.unreferencedCredentials" . | fromJsonArray -}}
{{- if $c.existingSecret -}}
existingSecret: {{ $c.existingSecret }}
{{- else -}}
{{- $table := include "consentry.credentialTable" . | fromYaml -}}
{{- range $name := $rest }}
{{- $value := index $c $name | default "" }}
{{- if or $value (not (index $table $name 2)) }}
{{ index $table $name 1 }}: {{ $value | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* secretKeyRef env of the credentials one workload reads.
     Usage: include "consentry.credentialEnv" (list $ "crawl") */}}
{{- define "consentry.credentialEnv" -}}
{{- $ := index . 0 -}}
{{- $c := $.Values.credentials -}}
{{- $table := include "consentry.credentialTable" $ | fromYaml -}}
{{- $own := printf "%s-credentials" (include "consentry.fullname" $) -}}
{{- range $name := include "consentry.credentialsOf" (index . 1) | fromJsonArray }}
{{- $row := index $table $name }}
{{- $ref := index $c.refs $name }}
- name: {{ index $row 0 }}
  valueFrom:
    secretKeyRef:
      {{- if $ref.name }}
      name: {{ $ref.name }}
      key: {{ required (printf "credentials.refs.%s.key is required with its name" $name) $ref.key }}
      {{- else if $c.existingSecret }}
      name: {{ $c.existingSecret }}
      key: {{ index $c.keys $name }}
      {{- if index $row 2 }}
      optional: true
      {{- end }}
      {{- else }}
      name: {{ $own }}
      key: {{ index $row 1 }}
      {{- if index $row 2 }}
      optional: true
      {{- end }}
      {{- end }}
{{- end }}
{{- end -}}

{{/* Trust ------------------------------------------------------------------------------------ */}}

{{- define "consentry.caEnabled" -}}
{{- if or .Values.caBundle.configMap .Values.caBundle.secret -}}true{{- end -}}
{{- end -}}

{{/* Where the trusted bundle is: the combined file an init container writes, or the mounted one. */}}
{{- define "consentry.caFile" -}}
{{- if .Values.caBundle.includeSystemCAs -}}
/etc/consentry/trust/ca-bundle.pem
{{- else -}}
/etc/consentry/ca/{{ .Values.caBundle.key }}
{{- end -}}
{{- end -}}

{{/* Init container that appends the mounted CAs to the image's public ones (only when asked). */}}
{{- define "consentry.caInitContainer" -}}
{{- if and (include "consentry.caEnabled" .) .Values.caBundle.includeSystemCAs }}
- name: ca-bundle
  image: {{ include "consentry.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["/bin/sh", "-c", "cat /etc/ssl/certs/ca-certificates.crt /etc/consentry/ca/{{ .Values.caBundle.key }} > /etc/consentry/trust/ca-bundle.pem"]
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {cpu: 100m, memory: 64Mi}
  securityContext:
    {{- include "consentry.containerSecurityContext" . | nindent 4 }}
  volumeMounts:
    - name: ca
      mountPath: /etc/consentry/ca
      readOnly: true
    - name: trust
      mountPath: /etc/consentry/trust
{{- end }}
{{- end -}}

{{/* env / envFrom of every Consentry container: the ConfigMap, the CA bundle's variables and the
     workload's credentials. Usage: include "consentry.env" (list $ "api") */}}
{{- define "consentry.env" -}}
{{- $ := index . 0 -}}
envFrom:
  - configMapRef:
      name: {{ include "consentry.fullname" $ }}-config
env:
  - name: HOME
    value: /tmp
  - name: RAY_USAGE_STATS_ENABLED
    value: "0"
  {{- if include "consentry.caEnabled" $ }}
  - name: SSL_CERT_FILE
    value: {{ include "consentry.caFile" $ }}
  - name: GRPC_DEFAULT_SSL_ROOTS_FILE_PATH
    value: {{ include "consentry.caFile" $ }}
  {{- end }}
  {{- include "consentry.credentialEnv" . | nindent 2 }}
{{- end -}}

{{/* Writable scratch space for a read-only root filesystem, and the CA bundle.
     Usage: include "consentry.volumes" (dict "root" $ "tmpSize" "1Gi") */}}
{{- define "consentry.volumes" -}}
{{- $ := .root -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmpSize | default "1Gi" }}
- name: home
  emptyDir:
    sizeLimit: 1Gi
{{- with $.Values.caBundle }}
{{- if .configMap }}
- name: ca
  configMap:
    name: {{ .configMap }}
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- else if .secret }}
- name: ca
  secret:
    secretName: {{ .secret }}
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- if and (or .configMap .secret) .includeSystemCAs }}
- name: trust
  emptyDir:
    sizeLimit: 16Mi
{{- end }}
{{- end }}
{{- end -}}

{{- define "consentry.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /var/lib/consentry
{{- if include "consentry.caEnabled" . }}
- name: ca
  mountPath: /etc/consentry/ca
  readOnly: true
{{- if .Values.caBundle.includeSystemCAs }}
- name: trust
  mountPath: /etc/consentry/trust
  readOnly: true
{{- end }}
{{- end }}
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
  {{- with (include "consentry.caInitContainer" $ | trim) }}
  initContainers:
    {{- . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "consentry.image" $ }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      {{- include "consentry.env" (list $ .component) | nindent 6 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- include "consentry.containerSecurityContext" $ | nindent 8 }}
      volumeMounts:
        {{- include "consentry.volumeMounts" $ | nindent 8 }}
  volumes:
    {{- include "consentry.volumes" (dict "root" $) | nindent 4 }}
{{- end -}}

{{/* The face-model device of ingest: `model.device` when the ingest actors reserve GPUs
     (ingest.workerGpus > 0), else cpu. The driver passes its settings to the actors, so the
     driver and the GPU worker pods carry it; everything else uses cpu. */}}
{{- define "consentry.ingestDevice" -}}
{{- ternary .Values.model.device "cpu" (gt (float64 .Values.ingest.workerGpus) 0.0) -}}
{{- end -}}

{{/* Quantities ------------------------------------------------------------------------------- */}}

{{/* Bytes of a Kubernetes memory quantity ("1536Mi", "8Gi", "512M", 1073741824). */}}
{{- define "consentry.bytes" -}}
{{- $s := toString . -}}
{{- $units := dict "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 -}}
{{- $out := "" -}}
{{- range $u := list "Ki" "Mi" "Gi" "Ti" "k" "M" "G" "T" -}}
{{- if and (not $out) (hasSuffix $u $s) -}}
{{- $out = mulf (float64 (trimSuffix $u $s)) (index $units $u) | int64 | toString -}}
{{- end -}}
{{- end -}}
{{- default (float64 $s | int64 | toString) $out -}}
{{- end -}}

{{/* CPUs of a Kubernetes CPU quantity ("500m", "2", 8) as a float. */}}
{{- define "consentry.cpus" -}}
{{- $s := toString . -}}
{{- if hasSuffix "m" $s -}}{{- divf (float64 (trimSuffix "m" $s)) 1000.0 -}}{{- else -}}{{- float64 $s -}}{{- end -}}
{{- end -}}

{{/* Ray ------------------------------------------------------------------------------------- */}}

{{/* A hash of everything a Ray pod runs with: image, settings, credentials' sources, CA bundle and
     the Ray values (replica counts left out, so the autoscaler's choices never count). */}}
{{- define "consentry.rayRevision" -}}
{{- $ray := deepCopy .Values.ray -}}
{{- $groups := list -}}
{{- range $ray.workerGroups -}}
{{- $groups = append $groups (omit . "replicas" "minReplicas" "maxReplicas") -}}
{{- end -}}
{{- $_ := set $ray "workerGroups" $groups -}}
{{- list (include "consentry.image" .) (include "consentry.gpuImage" .) (include "consentry.configData" .) (include "consentry.credentialsData" .) .Values.credentials.refs .Values.caBundle (omit $ray "autoscaler") .Values.ingest.workerGpus .Values.model | toJson | sha256sum | trunc 10 -}}
{{- end -}}

{{- define "consentry.rayClusterName" -}}
{{- if eq .Values.ray.upgradeStrategy "RenameCluster" -}}
{{- printf "%s-ray-%s" (include "consentry.fullname" .) (include "consentry.rayRevision" . | trunc 8) -}}
{{- else -}}
{{- printf "%s-ray" (include "consentry.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Environment of the Ray containers beyond the settings: log rotation that fits the temp volume. */}}
{{- define "consentry.rayEnv" -}}
- name: RAY_ROTATION_MAX_BYTES
  value: {{ .Values.ray.logRotation.maxBytes | int64 | quote }}
- name: RAY_ROTATION_BACKUP_COUNT
  value: {{ .Values.ray.logRotation.backupCount | quote }}
{{- end -}}

{{/* A probe of Ray's local health endpoints, with the Ray token when KubeRay set one (the image has
     no wget, which KubeRay's own probes need). Usage: include "consentry.rayProbe" (list "port/path" ...) */}}
{{- define "consentry.rayProbe" -}}
import os, urllib.request as u; h = {'Authorization': 'Bearer ' + os.environ['RAY_AUTH_TOKEN']} if os.environ.get('RAY_AUTH_TOKEN') else {}
{{- range . }}; u.urlopen(u.Request('http://127.0.0.1:{{ . }}', headers=h), timeout=2){{ end }}
{{- end -}}

{{/* Ray resources: the values' resources plus an ephemeral-storage request covering the temp volume
     (logs, spilled objects) and CONSENTRY_HOME. */}}
{{- define "consentry.rayResources" -}}
{{- $r := deepCopy .resources -}}
{{- $eph := add (include "consentry.bytes" (.tmpSize | default "1Gi") | int64) 1073741824 -}}
{{- $_ := set $r.requests "ephemeral-storage" (printf "%dMi" (div $eph 1048576)) -}}
{{- toYaml $r -}}
{{- end -}}

{{/* /dev/shm's size, checked: the object store must fit in it (else Ray puts the store in /tmp) and
     it must leave room in the memory limit it counts against. Usage: (list "ray.head" $group) */}}
{{- define "consentry.shmSize" -}}
{{- $where := index . 0 -}}
{{- $g := index . 1 -}}
{{- $shm := include "consentry.bytes" $g.shmSize | int64 -}}
{{- $store := include "consentry.bytes" $g.objectStoreMemory | int64 -}}
{{- $mem := include "consentry.bytes" $g.resources.limits.memory | int64 -}}
{{- if gt $store $shm -}}
{{- fail (printf "%s: objectStoreMemory (%s) must fit in shmSize (%s), or Ray falls back to a disk-backed object store in /tmp" $where $g.objectStoreMemory $g.shmSize) -}}
{{- end -}}
{{- if ge (mul $shm 2) $mem -}}
{{- fail (printf "%s: shmSize (%s) must stay under half the memory limit (%s): /dev/shm counts against it" $where $g.shmSize $g.resources.limits.memory) -}}
{{- end -}}
{{- $g.shmSize -}}
{{- end -}}

{{/* Network policies ------------------------------------------------------------------------- */}}

{{/* Egress rules to one outside system given as "host:port" endpoints: a `<svc>.<namespace>.svc…`
     host allows that namespace on that port, a bare service name this namespace, any other host the
     public web blocks on that port. Usage: include "consentry.endpointEgress" (list $ "host:port" ...) */}}
{{- define "consentry.endpointEgress" -}}
{{- $ := index . 0 -}}
{{- range $ep := rest . }}
{{- $parts := splitList ":" $ep }}
{{- $host := first $parts }}
{{- $port := last $parts }}
{{- $labels := splitList "." $host }}
- ports:
    - port: {{ $port }}
      protocol: TCP
  to:
  {{- if and (ge (len $labels) 3) (eq (index $labels 2) "svc") }}
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ index $labels 1 }}
  {{- else if eq (len $labels) 1 }}
    - podSelector: {}
  {{- else }}
  {{- range $.Values.networkPolicy.egress.web.ipBlocks }}
    - ipBlock:
        {{- toYaml . | nindent 8 }}
  {{- end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* "host:port" of a URL, with the scheme's default port. */}}
{{- define "consentry.urlEndpoint" -}}
{{- $u := urlParse . -}}
{{- $hp := splitList ":" $u.host -}}
{{- printf "%s:%s" (first $hp) (ternary (last $hp) (ternary "443" "80" (eq $u.scheme "https")) (gt (len $hp) 1)) -}}
{{- end -}}

{{/* The egress rules of one outside system: the values' rules, else derived from its address. */}}
{{- define "consentry.serviceEgress" -}}
{{- $ := index . 0 -}}
{{- $name := index . 1 -}}
{{- $given := index $.Values.networkPolicy.egress.services $name -}}
{{- if $given -}}
{{- toYaml $given -}}
{{- else if eq $name "kafka" -}}
{{- include "consentry.endpointEgress" (concat (list $) (splitList "," $.Values.kafka.bootstrap)) -}}
{{- else if eq $name "objectStore" -}}
{{- include "consentry.endpointEgress" (list $ (include "consentry.urlEndpoint" $.Values.objectStore.endpoint)) -}}
{{- else -}}
{{- include "consentry.endpointEgress" (list $ (include "consentry.urlEndpoint" $.Values.milvus.uri)) -}}
{{- end -}}
{{- end -}}

{{/* A peer selecting the release's pods of some components. Usage: (list $ "ray-head" "ray-worker") */}}
{{- define "consentry.componentsPeer" -}}
{{- $ := index . 0 -}}
podSelector:
  matchLabels:
    {{- include "consentry.selectorLabels" $ | nindent 4 }}
  matchExpressions:
    - key: app.kubernetes.io/component
      operator: In
      values: {{ rest . | toJson }}
{{- end -}}
