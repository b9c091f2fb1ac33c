{{/*
hookbridge.podTemplate: the pod template (spec.template) that the Deployment
and the StatefulSet share, at column 0; include it with `| nindent 2`.
*/}}
{{- define "hookbridge.podTemplate" -}}
template:
  metadata:
    annotations:
      # Rolls the pods when the rendered config changes.
      checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
      {{- with .Values.podAnnotations }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    labels:
      {{- include "hookbridge.labels" . | nindent 6 }}
      {{- with .Values.podLabels }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
  spec:
    serviceAccountName: {{ include "hookbridge.serviceAccountName" . }}
    automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
    {{- with .Values.imagePullSecrets }}
    imagePullSecrets:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.priorityClassName }}
    priorityClassName: {{ . | quote }}
    {{- end }}
    # On SIGTERM Hookbridge stops fetching, finishes in-flight records within
    # shutdown_timeout, commits and leaves its groups (a static member
    # stays in them); this must be longer.
    terminationGracePeriodSeconds: {{ include "hookbridge.terminationGracePeriodSeconds" . }}
    securityContext:
      {{- toYaml .Values.podSecurityContext | nindent 6 }}
    containers:
      - name: hookbridge
        image: {{ include "hookbridge.image" . | quote }}
        imagePullPolicy: {{ .Values.image.pullPolicy }}
        args: ["run", "-c", "/etc/hookbridge/hookbridge.yaml"]
        ports:
          - name: admin
            containerPort: {{ .Values.admin.port }}
            protocol: TCP
        env:
          - name: POD_NAME
            valueFrom:
              fieldRef:
                fieldPath: metadata.name
          - name: POD_NAMESPACE
            valueFrom:
              fieldRef:
                fieldPath: metadata.namespace
          - name: NODE_NAME
            valueFrom:
              fieldRef:
                fieldPath: spec.nodeName
          - name: OTEL_RESOURCE_ATTRIBUTES
            value: "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),k8s.node.name=$(NODE_NAME)"
          {{- /* Quoted: a Secret named 2024, or a key named true or on, is
                 a string, not a number or a boolean. */}}
          {{- range .Values.secrets.signing }}
          - name: {{ .env | quote }}
            valueFrom:
              secretKeyRef:
                name: {{ .existingSecret | quote }}
                key: {{ .key | quote }}
          {{- end }}
          {{- with .Values.secrets.saslPassword }}
          {{- if .existingSecret }}
          - name: {{ .env | quote }}
            valueFrom:
              secretKeyRef:
                name: {{ .existingSecret | quote }}
                key: {{ .key | quote }}
          {{- end }}
          {{- end }}
          {{- with .Values.extraEnv }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        {{- with .Values.extraEnvFrom }}
        envFrom:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        startupProbe:
          httpGet:
            path: /livez
            port: admin
          {{- toYaml .Values.startupProbe | nindent 10 }}
        # /livez: the process is up. Never tied to Kafka or targets: a broker
        # or webhook outage must not restart pods.
        livenessProbe:
          httpGet:
            path: /livez
            port: admin
          {{- toYaml .Values.livenessProbe | nindent 10 }}
        # /readyz: groups joined, nothing stuck or disabled, not shutting down.
        readinessProbe:
          httpGet:
            path: /readyz
            port: admin
          {{- toYaml .Values.readinessProbe | nindent 10 }}
        securityContext:
          {{- toYaml .Values.securityContext | nindent 10 }}
        {{- with .Values.resources }}
        resources:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        volumeMounts:
          - name: config
            mountPath: /etc/hookbridge
            readOnly: true
          - name: tmp
            mountPath: /tmp
          {{- with .Values.extraVolumeMounts }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
    volumes:
      - name: config
        configMap:
          name: {{ include "hookbridge.fullname" . }}
      - name: tmp
        {{- with .Values.tmpVolume.sizeLimit }}
        emptyDir:
          sizeLimit: {{ . }}
        {{- else }}
        emptyDir: {}
        {{- end }}
      {{- with .Values.extraVolumes }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with .Values.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.affinity }}
    affinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.topologySpreadConstraints }}
    topologySpreadConstraints:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
