{{/* Name of the chart, overridable. */}}
{{- define "hookbridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: <release>-<chart> unless the release name already contains it. */}}
{{- define "hookbridge.fullname" -}}
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

{{- define "hookbridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hookbridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hookbridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hookbridge.labels" -}}
helm.sh/chart: {{ include "hookbridge.chart" . }}
{{ include "hookbridge.selectorLabels" . }}
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | toString | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: bridge
{{- end }}

{{- define "hookbridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hookbridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hookbridge.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/*
hookbridge.configData: the config tree from values, with admin.listen forced to
0.0.0.0:<admin.port>; when the SASL password comes from a Secret,
kafka.sasl.password defaulting to "${<env>}"; with staticMembership,
kafka.group_instance_id "${POD_NAME}" (the pod's name, from the downward API).
Returns YAML.
*/}}
{{- define "hookbridge.configData" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $admin := deepCopy (get $cfg "admin" | default dict) }}
{{- $_ := set $admin "listen" (printf "0.0.0.0:%d" (int .Values.admin.port)) }}
{{- $_ := set $cfg "admin" $admin }}
{{- $sasl := .Values.secrets.saslPassword | default dict }}
{{- if $sasl.existingSecret }}
{{- $kafka := deepCopy (get $cfg "kafka" | default dict) }}
{{- $ks := deepCopy (get $kafka "sasl" | default dict) }}
{{- if not (get $ks "password") }}
{{- $_ := set $ks "password" (printf "${%s}" (required "secrets.saslPassword.env is required" $sasl.env)) }}
{{- end }}
{{- $_ := set $kafka "sasl" $ks }}
{{- $_ := set $cfg "kafka" $kafka }}
{{- end }}
{{- if .Values.staticMembership.enabled }}
{{- $kafka := deepCopy (get $cfg "kafka" | default dict) }}
{{- $_ := set $kafka "group_instance_id" "${POD_NAME}" }}
{{- $_ := set $cfg "kafka" $kafka }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Names of the environment variables the chart injects into the container. */}}
{{- define "hookbridge.envNames" -}}
{{- $names := list "POD_NAME" "POD_NAMESPACE" "NODE_NAME" "OTEL_RESOURCE_ATTRIBUTES" }}
{{- range .Values.secrets.signing }}{{ $names = append $names .env }}{{ end }}
{{- if .Values.secrets.saslPassword.existingSecret }}{{ $names = append $names .Values.secrets.saslPassword.env }}{{ end }}
{{- range .Values.extraEnv }}{{ $names = append $names .name }}{{ end }}
{{- join "," $names }}
{{- end }}

{{/*
hookbridge.validate fails the render on what would only fail at run time:
a ${VAR} in the config that nothing injects (Hookbridge refuses an unset
variable), a Secret injected for a ${VAR} the config never names (the pods
would wait for it), a SASL password from a Secret without a mechanism that
uses one, a route list that is empty, a grace period shorter than the drain,
an admin port below 1024, which the non-root bridge cannot bind (checked here
rather than in the schema, whose error would not say why).
*/}}
{{- define "hookbridge.validate" -}}
{{- $cfg := .Values.config | default dict }}
{{- $port := .Values.admin.port | int }}
{{- if lt $port 1024 }}
{{- fail (printf "admin.port (%d) must be 1024 or above: the bridge runs as a non-root user without NET_BIND_SERVICE and cannot bind a lower port, so the pod would crash-loop (service.port, the Service's own port, may still be %d)" $port $port) }}
{{- end }}
{{- if not (get $cfg "routes") }}
{{- fail "config.routes: at least one route is required" }}
{{- end }}
{{- if and (not (dig "kafka" "embedded" false $cfg)) (not (dig "kafka" "brokers" (list) $cfg)) }}
{{- fail "config.kafka.brokers: required (kafka.embedded is for demos, not clusters)" }}
{{- end }}
{{- if not .Values.extraEnvFrom }}
{{- $have := splitList "," (include "hookbridge.envNames" .) }}
{{- range regexFindAll "\\$?\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}" (include "hookbridge.configData" .) -1 }}
{{- if not (hasPrefix "$$" .) }}
{{- $var := trimPrefix "${" . | trimSuffix "}" }}
{{- if not (has $var $have) }}
{{- fail (printf "config references ${%s}, but no environment variable %s is injected: add it to secrets.signing (from a Secret), secrets.saslPassword or extraEnv" $var $var) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $named := list }}
{{- range regexFindAll "\\$?\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}" (include "hookbridge.configData" .) -1 }}
{{- if not (hasPrefix "$$" .) }}
{{- $named = append $named (regexFind "[A-Za-z_][A-Za-z0-9_]*" .) }}
{{- end }}
{{- end }}
{{- range .Values.secrets.signing }}
{{- if not (and .env .existingSecret .key) }}
{{- fail "secrets.signing[]: env, existingSecret and key are all required" }}
{{- end }}
{{- if not (has .env $named) }}
{{- fail (printf "secrets.signing: %s comes from Secret %s, but the config references no ${%s}: the pods would wait for that Secret (CreateContainerConfigError) for a value nothing reads; remove the entry (secrets.signing: [] when no route signs)" .env .existingSecret .env) }}
{{- end }}
{{- end }}
{{- with .Values.secrets.saslPassword }}
{{- $mechanism := dig "kafka" "sasl" "mechanism" "" $cfg | toString }}
{{- if and .existingSecret (not (or (contains "${" $mechanism) (has $mechanism (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512")))) }}
{{- fail (printf "secrets.saslPassword.existingSecret sets config.kafka.sasl.password, which only the mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 use, but config.kafka.sasl.mechanism is %q: the bridge would refuse the config at start. Set the mechanism (and username), or, for OAUTHBEARER, leave secrets.saslPassword.existingSecret empty and inject the client secret through secrets.signing" $mechanism) }}
{{- end }}
{{- end }}
{{- $_ := include "hookbridge.terminationGracePeriodSeconds" . }}
{{- include "hookbridge.validateStaticMembership" . }}
{{- include "hookbridge.validateFiles" . }}
{{- end }}

{{/*
hookbridge.validateFiles fails the render on a *_file key (CA bundle,
certificate, key, secret) whose file no volume of extraVolumeMounts brings
into the pod: the bridge would refuse the config at start and the pod
crash-loop. The image holds no such file, the config volume holds only
hookbridge.yaml, and /tmp is empty. A path from ${VAR} is not checked.
*/}}
{{- define "hookbridge.validateFiles" -}}
{{- $mounts := list }}
{{- range .Values.extraVolumeMounts }}
{{- $mounts = append $mounts (trimSuffix "/" (toString .mountPath)) }}
{{- end }}
{{- range regexFindAll "(?m)^ *-? *(ca|cert|key|client_secret|signing_secrets|bearer_token)_file: .+$" (toYaml .Values.config) -1 }}
{{- $key := regexFind "[a-z_]+_file" . }}
{{- $path := regexReplaceAll "^[^:]+: *" . "" | trimAll "\"'" }}
{{- if and $path (not (contains "${" $path)) }}
{{- if not (hasPrefix "/" $path) }}
{{- fail (printf "config: %s %q is relative, so it names a file in the container's working directory, which the image does not have: mount the file with extraVolumes and extraVolumeMounts and give its absolute path" $key $path) }}
{{- end }}
{{- $found := false }}
{{- range $mounts }}
{{- if or (eq $path .) (hasPrefix (printf "%s/" .) $path) }}
{{- $found = true }}
{{- end }}
{{- end }}
{{- if not $found }}
{{- fail (printf "config: %s %q is under no mountPath of extraVolumeMounts: the image has no such file, so the bridge would refuse its config at start; mount it (a Secret in extraVolumes, its mountPath in extraVolumeMounts)" $key $path) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
hookbridge.validateStaticMembership fails the render on a static membership
that would not hold: an id the pods share or lose at every rollout, a session
that ends before a restarted pod is back, a Kafka version without KIP-345.
*/}}
{{- define "hookbridge.validateStaticMembership" -}}
{{- $kafka := dig "kafka" dict (.Values.config | default dict) }}
{{- if get $kafka "group_instance_id" }}
{{- fail "config.kafka.group_instance_id: leave it out and set staticMembership.enabled (with workload: StatefulSet), which sets it to each pod's own name; an id written here is shared by every replica, and the coordinator fences all but one" }}
{{- end }}
{{- if eq .Values.workload "StatefulSet" }}
{{- $name := include "hookbridge.fullname" . }}
{{- if gt (len $name) 52 }}
{{- fail (printf "workload StatefulSet: the name %q is longer than 52 characters, and the StatefulSet controller labels each pod with it plus an 11-character revision hash, which must fit in 63 (shorten it with fullnameOverride)" $name) }}
{{- end }}
{{- end }}
{{- if .Values.staticMembership.enabled }}
{{- if ne .Values.workload "StatefulSet" }}
{{- fail (printf "staticMembership.enabled needs workload: StatefulSet, not %s: a Deployment's pods get new names at every rollout, so each new pod would join as a new member while the old one's partitions wait kafka.session_timeout before they move" .Values.workload) }}
{{- end }}
{{- $session := toString (get $kafka "session_timeout" | default "") }}
{{- $fromEnv := contains "${" $session }}
{{- if not (or $fromEnv (eq $session "" "0") (regexMatch "^\\+?(([0-9]+\\.?[0-9]*|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$" $session)) }}
{{- fail (printf "config.kafka.session_timeout: %q is not a positive Go duration such as 2m or 1m30s, and the bridge would refuse it at start" $session) }}
{{- end }}
{{- /* Zero however written (0, 0s, 0.0s, 0m0s) is the bridge's default. */}}
{{- if not (or $fromEnv (regexMatch "[1-9]" $session)) }}
{{- $probe := .Values.startupProbe }}
{{- $startup := add (mul ($probe.periodSeconds | default 10) ($probe.failureThreshold | default 3)) ($probe.initialDelaySeconds | default 0) }}
{{- fail (printf "staticMembership.enabled needs config.kafka.session_timeout set explicitly, longer than a pod restart takes: up to terminationGracePeriodSeconds (%ss here) for the old pod to drain, then scheduling, image pull and start-up (the startup probe allows %ds). The bridge's default, 10s, is shorter, and every restart would rebalance. It is also how long a removed pod's partitions wait (a scale-down)" (include "hookbridge.terminationGracePeriodSeconds" .) $startup) }}
{{- end }}
{{- if regexMatch "^(0\\.|1\\.|2\\.[0-2]\\.)" (toString (get $kafka "version" | default "")) }}
{{- fail (printf "staticMembership.enabled needs config.kafka.version 2.3.0 or later (KIP-345 static membership), not %v" (get $kafka "version")) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the StatefulSet's headless governing Service. */}}
{{- define "hookbridge.headlessServiceName" -}}
{{- printf "%s-headless" (include "hookbridge.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/* The workload as kubectl names it: deploy/<name> or statefulset/<name>. */}}
{{- define "hookbridge.workloadRef" -}}
{{- printf "%s/%s" (ternary "statefulset" "deploy" (eq .Values.workload "StatefulSet")) (include "hookbridge.fullname" .) }}
{{- end }}

{{/*
hookbridge.shutdownSeconds: config.shutdown_timeout (a Go duration such as
25s, 1m30s, 500ms; default 25s, which "", 0 and 0s also mean, as in the
bridge) in whole seconds, rounded up.
*/}}
{{- define "hookbridge.shutdownSeconds" -}}
{{- $d := toString (dig "shutdown_timeout" "25s" (.Values.config | default dict)) }}
{{- if or (eq $d "") (eq $d "0") }}{{- $d = "25s" }}{{- end }}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(h|m|s|ms|us|µs|ns))+$" $d) }}
{{- fail (printf "config.shutdown_timeout: %q is not a Go duration such as 25s or 1m30s" $d) }}
{{- end }}
{{- $ms := 0.0 }}
{{- $unit := dict "h" 3600000.0 "m" 60000.0 "s" 1000.0 "ms" 1.0 "us" 0.001 "µs" 0.001 "ns" 0.000001 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(h|ms|m|s|us|µs|ns)" $d -1 }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" . }}
{{- $u := trimPrefix $num . }}
{{- $ms = addf $ms (mulf (float64 $num) (get $unit $u)) }}
{{- end }}
{{- if eq $ms 0.0 }}{{- $ms = 25000.0 }}{{- end }}{{/* zero means the default, as in the bridge */}}
{{- ceil (divf $ms 1000.0) | int }}
{{- end }}

{{/* terminationGracePeriodSeconds: given (checked) or shutdown + 20 s. */}}
{{- define "hookbridge.terminationGracePeriodSeconds" -}}
{{- $shutdown := include "hookbridge.shutdownSeconds" . | int }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $shutdown 20 }}
{{- else }}
{{- $grace := .Values.terminationGracePeriodSeconds | int }}
{{- if le $grace (add $shutdown 10) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed config.shutdown_timeout (%ds) by more than 10 s, or the kubelet may kill the pod before it has committed, left its groups and flushed its spans" $grace $shutdown) }}
{{- end }}
{{- $grace }}
{{- end }}
{{- end }}

{{/* maxReplicaCount of the ScaledObject: keda.maxReplicaCount, else keda.partitions. */}}
{{- define "hookbridge.kedaMaxReplicas" -}}
{{- $max := .Values.keda.maxReplicaCount | default 0 | int }}
{{- if le $max 0 }}{{ $max = required "keda.partitions is required when keda.maxReplicaCount is 0" .Values.keda.partitions | int }}{{ end }}
{{- $max }}
{{- end }}
