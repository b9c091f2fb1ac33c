#!/usr/bin/env bash
# deploy/check.sh: validate everything under deploy/ without a container
# engine or a cluster (none runs in CI). Run from anywhere: `make deploy-check`.
#
#   1. Dockerfiles: BuildKit's parser + instructions.Parse with its lint rules,
#      and the image contract (multi-stage, cache mounts, static, non-root,
#      entrypoint); .dockerignore keeps every file the images build from.
#   2. compose.yaml: loaded and schema-validated by compose-go (docker
#      compose's loader), cross-checked with hookbridge.yaml; that config then
#      passes `hookbridge validate` with the environment compose gives it.
#   3. Helm chart: `helm lint --strict` and `helm template` with default
#      values, with KEDA + ServiceMonitor on, with the PrometheusRule, and as
#      a StatefulSet with static membership; every object decodes strictly
#      into the Kubernetes API types; the PrometheusRule's expressions parse
#      as PromQL, name only metrics the README documents, and are the alerts
#      docs/operations.md documents; the Grafana dashboard's ConfigMap holds
#      the chart's dashboard as is; the rendered config passes `hookbridge
#      validate`; renders that must fail do fail.
#   4. The Grafana dashboard (deploy/grafana/hookbridge.json, the chart's
#      dashboards/hookbridge.json): decoded strictly, every query parsed as
#      PromQL with Grafana's variables substituted, on metrics the README
#      documents (or Go/process ones the checker allows), filtered by
#      $namespace; unique panel ids; every documented metric on a panel.
#
# Tools, built once into test/tools/.bin (gitignored) and rebuilt only when
# their module (or the Go version) changes:
#   helm          from test/tools/helm/go.mod  (helm.sh/helm/v3/cmd/helm, a go tool)
#   composecheck  from deploy/internal/composecheck (its own module, so the
#                 main module does not grow compose-go/buildkit/k8s deps)
#
# Environment: NICE (default "nice -n 10") prefixes the builds; KEEP_TMP=1
# keeps the rendered files; HOOKBRIDGE_BIN=path skips building the bridge.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$ROOT/test/tools/.bin
CHART=deploy/helm/hookbridge
NICE=${NICE-nice -n 10}

log() { printf '[deploy-check] %s\n' "$*" >&2; }
section() { printf '\n---- %s ----\n' "$*" >&2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/deploy-check.XXXXXX")
if [ "${KEEP_TMP:-}" = 1 ]; then log "keeping $TMP"; else trap 'rm -rf "$TMP"' EXIT; fi
# helm keeps its caches out of $HOME.
export HELM_CACHE_HOME=$TMP/helm/cache HELM_CONFIG_HOME=$TMP/helm/config HELM_DATA_HOME=$TMP/helm/data

# build_tool NAME MODULE_DIR PACKAGE LDFLAGS STAMP_FILE...: builds NAME into
# $BIN unless $BIN/NAME.stamp matches the hash of the stamp files, ldflags and
# go version. TEST_BEFORE_BUILD=1 runs the module's vet and tests first.
build_tool() {
  local name=$1 dir=$2 pkg=$3 ldflags=$4
  shift 4
  local bin=$BIN/$name want have=""
  want=$({ go env GOVERSION; echo "$ldflags"; (cd "$dir" && cat "$@"); } | sha256sum | cut -d' ' -f1)
  [ -f "$bin.stamp" ] && have=$(cat "$bin.stamp")
  if [ -x "$bin" ] && [ "$have" = "$want" ]; then
    return 0
  fi
  log "building $name (first time, or its module changed): a cold build takes minutes"
  mkdir -p "$BIN"
  local start=$SECONDS
  if [ "${TEST_BEFORE_BUILD:-}" = 1 ]; then
    (cd "$dir" && $NICE go vet ./... && $NICE go test -count=1 ./...)
  fi
  (cd "$dir" && $NICE go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" "$pkg")
  mv -f "$bin.tmp" "$bin"
  echo "$want" >"$bin.stamp"
  log "built $name in $((SECONDS - start))s"
}

section "tools"
# helm's release ldflags (its Makefile): the version, and the Kubernetes
# version `helm template` assumes, from the client-go it is built with.
HELM_VERSION=$(awk '$1 == "helm.sh/helm/v3" { print $2 }' test/tools/helm/go.mod)
K8S_MINOR=$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2] }' test/tools/helm/go.mod)
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  HELM_LDFLAGS+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$K8S_MINOR"
done
build_tool helm test/tools/helm helm.sh/helm/v3/cmd/helm "$HELM_LDFLAGS" go.mod go.sum
# The checker's own tests (they feed it broken files) run whenever it is rebuilt.
TEST_BEFORE_BUILD=1 build_tool composecheck deploy/internal/composecheck . "-s -w" \
  go.mod go.sum $(cd deploy/internal/composecheck && ls ./*.go)
HELM=$BIN/helm
CHECK=$BIN/composecheck
"$HELM" version --short
# The bridge itself, for `hookbridge validate` (main module, usually cached);
# HOOKBRIDGE_BIN=path uses a binary you already have.
if [ -n "${HOOKBRIDGE_BIN:-}" ]; then
  cp "$HOOKBRIDGE_BIN" "$TMP/hookbridge"
else
  $NICE go build -o "$TMP/hookbridge" ./cmd/hookbridge
fi

# validate_config CONFIG ENV_FILE: `hookbridge validate` with only ENV_FILE's
# variables set (as the container would have them). A shipped configuration
# must also get no advice (a "warning:" line).
validate_config() {
  local cfg=$1 envfile=$2 vars=() out
  mapfile -t vars <"$envfile"
  if ! out=$(env -i PATH="$PATH" HOME="$TMP" "${vars[@]}" "$TMP/hookbridge" validate -c "$cfg" 2>&1); then
    printf '%s\n' "$out" >&2
    return 1
  fi
  printf '%s\n' "$out"
  if grep -q '^warning: ' <<<"$out"; then
    echo "$cfg: a shipped configuration gets advice from validate" >&2
    return 1
  fi
}

section "Dockerfiles"
"$CHECK" dockerfile -role hookbridge -context . deploy/docker/Dockerfile
"$CHECK" dockerfile -role receiver -context . deploy/compose/receiver.Dockerfile

section "compose"
"$CHECK" compose -f deploy/compose/compose.yaml -env-out "$TMP/compose.env" -env-service hookbridge
validate_config deploy/compose/hookbridge.yaml "$TMP/compose.env"

section "helm lint"
"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" -f "$CHART/ci/keda-values.yaml"
"$HELM" lint --strict "$CHART" -f "$CHART/ci/statefulset-values.yaml"

# render NAME KINDS HELM_ARGS...: helm template, strict object checks,
# then `hookbridge validate` of the rendered config. STATIC_MEMBERS=1 also
# wants each pod a static member (kafka.group_instance_id from its name).
# A PrometheusRule is checked against the alerts of docs/operations.md and
# the README's metric table; ALERTS_AS_DOCUMENTED=1 wants every documented
# alert in it, expression and `for` exactly as documented. A Grafana
# dashboard's ConfigMap (kind GrafanaDashboard) must hold the chart's
# dashboard as is and carry the label DASHBOARD_LABEL (NAME=VALUE, default
# grafana_dashboard=1).
render() {
  local name=$1 kinds=$2 static=() alerts=(-alerts-doc docs/operations.md -metrics-doc README.md)
  shift 2
  [ "${STATIC_MEMBERS:-}" = 1 ] && static=(-static-members)
  [ "${ALERTS_AS_DOCUMENTED:-}" = 1 ] && alerts+=(-alerts-as-documented)
  alerts+=(-dashboard "$CHART/dashboards/hookbridge.json" -dashboard-label "${DASHBOARD_LABEL:-grafana_dashboard=1}")
  log "helm template ($name)"
  "$HELM" template hb "$CHART" --namespace hookbridge "$@" >"$TMP/$name.yaml"
  "$CHECK" manifests -kinds "$kinds" "${static[@]}" "${alerts[@]}" -config-out "$TMP/$name.config.yaml" -env-out "$TMP/$name.env" "$TMP/$name.yaml"
  validate_config "$TMP/$name.config.yaml" "$TMP/$name.env"
}

section "helm template"
BASE=ConfigMap,Deployment,PodDisruptionBudget,Service,ServiceAccount
render defaults "$BASE"
render keda-servicemonitor "$BASE,ScaledObject,ServiceMonitor" \
  --set keda.enabled=true --set serviceMonitor.enabled=true
render ci-keda-values "$BASE,ScaledObject,ServiceMonitor" -f "$CHART/ci/keda-values.yaml"
render minimal "ConfigMap,Deployment" \
  --set serviceAccount.create=false --set service.enabled=false --set podDisruptionBudget.enabled=false
# A StatefulSet (its headless Service counts as kind HeadlessService) whose
# pods are static members; the Deployment's strategy, were it rendered into
# the StatefulSet, would fail the strict decoding.
STS=ConfigMap,HeadlessService,PodDisruptionBudget,Service,ServiceAccount,StatefulSet
STATIC_MEMBERS=1 render statefulset-static "$STS" \
  --set workload=StatefulSet --set staticMembership.enabled=true --set config.kafka.session_timeout=2m
STATIC_MEMBERS=1 render ci-statefulset-values "$STS,ScaledObject,ServiceMonitor" -f "$CHART/ci/statefulset-values.yaml"
render statefulset-dynamic "$STS" --set workload=StatefulSet
render statefulset-minimal "ConfigMap,HeadlessService,StatefulSet" --set workload=StatefulSet \
  --set serviceAccount.create=false --set service.enabled=false --set podDisruptionBudget.enabled=false

# must_fail NAME EXPECTED_MESSAGE HELM_ARGS...: the render is refused, saying why.
must_fail() {
  local name=$1 want=$2
  shift 2
  if "$HELM" template hb "$CHART" "$@" >"$TMP/$name.out" 2>&1; then
    log "FAIL: helm template ($name) rendered, but must fail with: $want"
    exit 1
  fi
  if ! grep -qF -- "$want" "$TMP/$name.out"; then
    log "FAIL: helm template ($name) failed without saying: $want"
    cat "$TMP/$name.out" >&2
    exit 1
  fi
  log "refused as it must be ($name): $want"
}

# renders_with NAME EXPECTED_LINE HELM_ARGS...: the render holds that line.
renders_with() {
  local name=$1 want=$2
  shift 2
  "$HELM" template hb "$CHART" "$@" >"$TMP/$name.out" 2>&1 || { cat "$TMP/$name.out" >&2; exit 1; }
  if ! grep -qF -- "$want" "$TMP/$name.out"; then
    log "FAIL: helm template ($name) does not render: $want"
    exit 1
  fi
  log "renders as it must ($name): $want"
}

section "helm template: values the bridge reads its own way"
# shutdown_timeout 0 (or "", 0s) is the bridge's default, 25 s: the grace period covers it.
renders_with zero-shutdown "terminationGracePeriodSeconds: 45" --set config.shutdown_timeout=0s
renders_with zero-shutdown-bare "terminationGracePeriodSeconds: 45" --set-string config.shutdown_timeout=0
renders_with pdb-zero "maxUnavailable: 0" --set podDisruptionBudget.maxUnavailable=0 --show-only templates/pdb.yaml
# An unbounded /tmp is still an emptyDir (a volume with no source is refused).
renders_with tmp-unbounded "emptyDir: {}" --set tmpVolume.sizeLimit=null --show-only templates/deployment.yaml
# Routes and topics whose "<route>-<topic>" names meet get distinct trigger
# names (KEDA refuses duplicates); the checker looks for them.
cat >"$TMP/keda-names.values.yaml" <<'EOF'
keda: {enabled: true}
secrets: {signing: []}
config:
  routes:
    - {name: orders, topics: [billing.x], target: {webhook: {url: "http://billing:8000/a"}}}
    - {name: orders-billing, topics: [x], target: {webhook: {url: "http://billing:8000/b"}}}
EOF
render keda-names "$BASE,ScaledObject" -f "$TMP/keda-names.values.yaml"
# Secret names, keys and env names that YAML would read as a number or a
# boolean stay strings (the checker decodes every object strictly).
cat >"$TMP/secret-refs.values.yaml" <<'EOF'
priorityClassName: "1000"
secrets:
  signing:
    - {env: BILLING_WHSEC, existingSecret: "2024", key: "true"}
  saslPassword: {env: "NO", existingSecret: "on", key: "1"}
config:
  kafka:
    sasl: {mechanism: PLAIN, username: hookbridge, allow_insecure: true}
EOF
render secret-refs "$BASE" -f "$TMP/secret-refs.values.yaml"
# IPv6 brokers are host:port as the bridge reads them ([address]:port).
render ipv6-brokers "$BASE,ScaledObject" --set keda.enabled=true --set 'config.kafka.brokers={[fd00::1]:9092}'

section "helm template: the PrometheusRule"
# With default values: every alert of docs/operations.md, as documented.
ALERTS_AS_DOCUMENTED=1 render prometheusrule "$BASE,ServiceMonitor,PrometheusRule" \
  --set serviceMonitor.enabled=true --set prometheusRule.enabled=true
# Overrides: a rule selector label, an alert off, thresholds, a range, for and
# severity changed, labels on every alert, rules of the operator's own (one on
# a histogram's series, one on a metric of Prometheus').
cat >"$TMP/prometheusrule.values.yaml" <<'EOF'
serviceMonitor: {enabled: true}
prometheusRule:
  enabled: true
  labels: {release: kube-prometheus-stack}
  additionalRuleLabels: {team: payments}
  alerts:
    lagGrowing: {threshold: 50000, for: 15m, severity: critical}
    breakerOpen: {window: 5m}
    deadLetters: {enabled: false}
    oldRecordsWaiting: {threshold: 900.5, for: 1m}
  additionalRules:
    - record: route:hookbridge_delivery_duration_seconds:p99
      expr: histogram_quantile(0.99, sum by (route, le) (rate(hookbridge_delivery_duration_seconds_bucket[5m])))
    - alert: HookbridgeDown
      expr: absent(up{job="hb-hookbridge"})
      for: 5m
      labels: {severity: critical}
EOF
render prometheusrule-overrides "$BASE,ServiceMonitor,PrometheusRule" -f "$TMP/prometheusrule.values.yaml"
for want in "release: kube-prometheus-stack" "team: payments" "expr: sum by (route) (hookbridge_consumer_lag) > 50000" \
  "expr: max by (route) (hookbridge_consumer_oldest_unacked_age_seconds) > 900.5" \
  "expr: max by (target) (max_over_time(hookbridge_breaker_state[5m])) == 2" "for: 15m" "alert: HookbridgeDown"; do
  grep -qF -- "$want" "$TMP/prometheusrule-overrides.yaml" || { log "FAIL: the overrides render lacks: $want"; exit 1; }
done
if grep -q HookbridgeDeadLetters "$TMP/prometheusrule-overrides.yaml"; then
  log "FAIL: prometheusRule.alerts.deadLetters.enabled=false still renders the alert"
  exit 1
fi
log "renders as it must (prometheusrule-overrides): thresholds, range, for, severity, labels, rules of its own, an alert off"

section "the Grafana dashboard"
# One file: deploy/grafana/hookbridge.json (for an import by hand) is a
# symlink to the chart's, which .Files.Get can reach.
if ! cmp -s deploy/grafana/hookbridge.json "$CHART/dashboards/hookbridge.json"; then
  log "FAIL: deploy/grafana/hookbridge.json differs from $CHART/dashboards/hookbridge.json (keep it a symlink to it)"
  exit 1
fi
"$CHECK" dashboard -metrics-doc README.md deploy/grafana/hookbridge.json
render grafana-dashboard "$BASE,ServiceMonitor,GrafanaDashboard" \
  --set serviceMonitor.enabled=true --set grafanaDashboard.enabled=true
# The sidecar's label of another Grafana, more labels, a folder annotation,
# and Grafana's namespace.
cat >"$TMP/grafana-dashboard.values.yaml" <<'EOF'
grafanaDashboard:
  enabled: true
  label: example.com/grafana-dashboard
  labelValue: hookbridge
  labels: {team: payments}
  annotations: {grafana_folder: Kafka bridges}
  namespace: monitoring
EOF
DASHBOARD_LABEL=example.com/grafana-dashboard=hookbridge render grafana-dashboard-overrides \
  "$BASE,GrafanaDashboard" -f "$TMP/grafana-dashboard.values.yaml"
for want in "team: payments" "grafana_folder: Kafka bridges" "namespace: monitoring"; do
  grep -qF -- "$want" "$TMP/grafana-dashboard-overrides.yaml" || { log "FAIL: the dashboard overrides render lacks: $want"; exit 1; }
done
log "renders as it must (grafana-dashboard-overrides): the sidecar's label, labels, a folder annotation, a namespace"

section "helm template: renders that must fail"
must_fail short-grace "must exceed config.shutdown_timeout" --set terminationGracePeriodSeconds=20
must_fail zero-shutdown-short-grace "must exceed config.shutdown_timeout" --set config.shutdown_timeout=0s --set terminationGracePeriodSeconds=10
# The drain, then up to 5 s for commits and group leaves and 5 s for spans.
must_fail grace-within-finish "by more than 10 s" --set terminationGracePeriodSeconds=35
must_fail bad-duration "is not a Go duration" --set config.shutdown_timeout=soon
cat >"$TMP/uninjected.yaml" <<'EOF'
config:
  routes:
    - name: orders
      topics: [orders]
      target: {webhook: {url: "http://billing:8000/hooks", signing_secrets: ["${NOPE}"]}}
EOF
must_fail uninjected-var 'config references ${NOPE}' -f "$TMP/uninjected.yaml"
must_fail schema "replicaCount" --set replicaCount=-1
# A Secret injected for a ${VAR} the config never names: the pods would wait
# for it. A plugin route (no signing) that keeps the default signing entry is
# refused; with `secrets.signing: []` it renders.
cat >"$TMP/plugin-route.yaml" <<'EOF'
config:
  plugins:
    redis: {command: ["/opt/hookbridge/plugins/redis"], env: {REDIS_ADDR: "redis.cache.svc:6379"}}
  routes:
    - {name: orders-cache, topics: [orders], target: {plugin: redis}, dead_letter: {topic: orders-cache.dlq}}
EOF
must_fail plugin-route-unused-secret 'config references no ${BILLING_WHSEC}' -f "$TMP/plugin-route.yaml"
renders_with plugin-route "plugin: redis" -f "$TMP/plugin-route.yaml" --set secrets.signing=null
# secrets.saslPassword sets kafka.sasl.password, which the bridge refuses
# without a mechanism that takes one.
must_fail sasl-password-no-mechanism 'config.kafka.sasl.mechanism is ""' \
  --set secrets.saslPassword.existingSecret=kafka-user
must_fail sasl-password-oauthbearer 'config.kafka.sasl.mechanism is "OAUTHBEARER"' \
  --set secrets.saslPassword.existingSecret=kafka-user --set config.kafka.sasl.mechanism=OAUTHBEARER
# The non-root bridge cannot bind a port below 1024 (the pod would crash-loop);
# the Service's own port may be one.
must_fail privileged-admin-port "admin.port (80) must be 1024 or above" --set admin.port=80
must_fail admin-port-range "/admin/port" --set admin.port=65536
renders_with low-service-port "port: 80" --set service.port=80 --show-only templates/service.yaml
must_fail keda-no-brokers "config.kafka.brokers" --set keda.enabled=true --set 'config.kafka.brokers=null'
must_fail keda-tls-no-auth "keda.authenticationRef is required" --set keda.enabled=true --set config.kafka.tls.enabled=true
cat >"$TMP/env-brokers.yaml" <<'EOF'
keda: {enabled: true}
config: {kafka: {brokers: ["${KAFKA_BOOTSTRAP}"]}}
extraEnv: [{name: KAFKA_BOOTSTRAP, value: "kafka:9092"}]
EOF
must_fail keda-env-brokers "does not expand" -f "$TMP/env-brokers.yaml"
# A route's topic or group as ${VAR}: the bridge expands it, KEDA would read
# the lag of a topic or group that does not exist.
cat >"$TMP/env-topic.yaml" <<'EOF'
keda: {enabled: true}
config:
  routes:
    - {name: orders, topics: ["${ORDERS_TOPIC}"], target: {webhook: {url: "http://billing:8000/hooks"}}}
extraEnv: [{name: ORDERS_TOPIC, value: orders}]
EOF
must_fail keda-env-topic 'does not expand "${ORDERS_TOPIC}"' -f "$TMP/env-topic.yaml"
cat >"$TMP/env-group.yaml" <<'EOF'
keda: {enabled: true}
config:
  routes:
    - {name: orders, group: "${ORDERS_GROUP:-billing}", topics: [orders], target: {webhook: {url: "http://billing:8000/hooks"}}}
EOF
must_fail keda-env-group 'does not expand "${ORDERS_GROUP:-billing}"' -f "$TMP/env-group.yaml"
must_fail keda-min-above-max "must not exceed the maximum" --set keda.enabled=true --set keda.minReplicaCount=8
# Static membership: stable pod names, an id of each pod's own, a session
# that outlasts a restart, a Kafka version with KIP-345.
must_fail static-deployment "needs workload: StatefulSet" \
  --set staticMembership.enabled=true --set config.kafka.session_timeout=2m
must_fail static-own-id "leave it out and set staticMembership.enabled" --set workload=StatefulSet \
  --set staticMembership.enabled=true --set config.kafka.session_timeout=2m --set config.kafka.group_instance_id=hookbridge
must_fail fixed-id-deployment "leave it out and set staticMembership.enabled" --set config.kafka.group_instance_id=hookbridge
must_fail static-no-session "needs config.kafka.session_timeout set explicitly" \
  --set workload=StatefulSet --set staticMembership.enabled=true
must_fail static-zero-session "needs config.kafka.session_timeout set explicitly" \
  --set workload=StatefulSet --set staticMembership.enabled=true --set config.kafka.session_timeout=0s
# Zero written otherwise is the bridge's 10s default all the same, and a
# number without a unit is no duration: the bridge would refuse it at start.
must_fail static-zero-session-fraction "needs config.kafka.session_timeout set explicitly" \
  --set workload=StatefulSet --set staticMembership.enabled=true --set config.kafka.session_timeout=0.0s
must_fail static-zero-session-units "needs config.kafka.session_timeout set explicitly" \
  --set workload=StatefulSet --set staticMembership.enabled=true --set config.kafka.session_timeout=0m0s
must_fail static-session-no-unit 'config.kafka.session_timeout: "120" is not' \
  --set workload=StatefulSet --set staticMembership.enabled=true --set-string config.kafka.session_timeout=120
must_fail static-old-kafka "needs config.kafka.version 2.3.0 or later" --set workload=StatefulSet \
  --set staticMembership.enabled=true --set config.kafka.session_timeout=2m --set config.kafka.version=2.2.0
must_fail statefulset-long-name "longer than 52 characters" --set workload=StatefulSet \
  --set fullnameOverride=hookbridge-with-a-name-far-too-long-for-a-statefulset-pod
must_fail workload-kind "/workload" --set workload=DaemonSet
# The PrometheusRule: a rule with nothing in it, a misspelt field of a rule of
# the operator's, a for that is no Prometheus duration.
must_fail prometheusrule-empty "renders no rule" --set prometheusRule.enabled=true \
  --set prometheusRule.alerts.lagGrowing.enabled=false --set prometheusRule.alerts.oldRecordsWaiting.enabled=false \
  --set prometheusRule.alerts.breakerOpen.enabled=false --set prometheusRule.alerts.stuckPartition.enabled=false \
  --set prometheusRule.alerts.deadLetters.enabled=false --set prometheusRule.alerts.notReady.enabled=false
must_fail prometheusrule-rule-field "/prometheusRule/additionalRules/0" --set prometheusRule.enabled=true \
  --set 'prometheusRule.additionalRules[0].alert=X' --set 'prometheusRule.additionalRules[0].exp=vector(1)'
must_fail prometheusrule-for "/prometheusRule/alerts/lagGrowing/for" --set prometheusRule.enabled=true \
  --set 'prometheusRule.alerts.lagGrowing.for=10 minutes'
# The dashboard: the sidecar's label among the extra labels (written twice),
# a label name Kubernetes refuses, a misspelt value.
must_fail dashboard-label-twice "grafanaDashboard.labels sets grafana_dashboard" --set grafanaDashboard.enabled=true \
  --set-string grafanaDashboard.labels.grafana_dashboard=0
must_fail dashboard-label-name "/grafanaDashboard/label" --set grafanaDashboard.label=-dashboard
must_fail dashboard-field "/grafanaDashboard" --set grafanaDashboard.folder=Kafka
# A *_file the pod has no volume for: the bridge would refuse its config at
# start. Under a mountPath (a directory, or the file itself by subPath) it
# renders; a path from ${VAR} is the operator's to mount.
cat >"$TMP/files.yaml" <<'EOF'
secrets: {signing: []}
config:
  kafka: {tls: {enabled: true, ca_file: /etc/kafka-ca/ca.pem}}
  routes:
    - name: orders
      topics: [orders]
      target:
        webhook:
          url: https://billing:8443/hooks
          signing_secrets_file: "/var/run/secrets/hooks/whsec"
          tls: {cert_file: '/var/run/secrets/mtls/tls.crt', key_file: "${MTLS_KEY}"}
extraEnv: [{name: MTLS_KEY, value: /var/run/secrets/mtls/tls.key}]
extraVolumes:
  - {name: kafka-ca, secret: {secretName: kafka-ca}}
  - {name: hooks, secret: {secretName: hooks}}
  - {name: mtls, secret: {secretName: mtls}}
extraVolumeMounts:
  - {name: kafka-ca, mountPath: /etc/kafka-ca/, readOnly: true}
  - {name: hooks, mountPath: /var/run/secrets/hooks, readOnly: true}
  - {name: mtls, mountPath: /var/run/secrets/mtls/tls.crt, subPath: tls.crt, readOnly: true}
EOF
renders_with files-mounted "ca_file: /etc/kafka-ca/ca.pem" -f "$TMP/files.yaml"
must_fail file-not-mounted 'ca_file "/etc/kafka-ca2/ca.pem" is under no mountPath' \
  -f "$TMP/files.yaml" --set config.kafka.tls.ca_file=/etc/kafka-ca2/ca.pem
must_fail file-relative 'ca_file "ca.pem" is relative' -f "$TMP/files.yaml" --set config.kafka.tls.ca_file=ca.pem
must_fail file-mount-prefix 'is under no mountPath' -f "$TMP/files.yaml" --set config.kafka.tls.ca_file=/etc/kafka-ca-old/ca.pem

section "done"
log "deploy checks passed"
