{{/*
Monitoring helpers (values under "monitoring", docs/MONITORING.md). The other templates call
these with one line each, so the monitoring parts stay in this directory.
*/}}

{{/* Each helper below renders nothing when its part is off; the templates include them as
     {{- with (include "…" .) }}{{ . | nindent N }}{{- end }} so an empty part adds no line. */}}

{{/* Whether the cluster serves the prometheus-operator API (its CRDs are installed). With
     `helm template`, pass --api-versions monitoring.coreos.com/v1 to render the objects. */}}
{{- define "flashvol.monitoring.operatorApi" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{ end -}}
{{- end -}}

{{/* Labels of every monitoring object: the chart's, plus monitoring.labels (a Prometheus that
     selects objects by label, e.g. kube-prometheus-stack's "release"). */}}
{{- define "flashvol.monitoring.labels" -}}
{{ include "flashvol.labels" . }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "flashvol.monitoring.nodeMetricsOn" -}}
{{- if eq (toString .Values.monitoring.nodeMetrics.enabled | lower) "true" }}true{{ end -}}
{{- end -}}

{{/* Provisioner args: the array poll interval. */}}
{{- define "flashvol.monitoring.provisionerArgs" -}}
{{- $raw := .Values.monitoring.arrayPollSeconds }}
{{- $poll := 60 }}
{{- if not (kindIs "invalid" $raw) }}{{ $poll = int $raw }}{{ end }}
{{- if lt $poll 1 }}
{{- fail (printf "monitoring.arrayPollSeconds %v must be at least 1" .Values.monitoring.arrayPollSeconds) }}
{{- end -}}
- --array-poll-seconds={{ $poll }}
{{- end -}}

{{/* The driver's node settings with statsFile added when node metrics are on (JSON). Argument:
     dict "root" . "settings" <the node settings map>. */}}
{{- define "flashvol.monitoring.nodeSettings" -}}
{{- $settings := .settings }}
{{- if include "flashvol.monitoring.nodeMetricsOn" .root }}
{{- $file := .root.Values.monitoring.nodeMetrics.statsFile | default "/run/flashvol-flex/stats.json" | toString }}
{{- if not (hasPrefix "/" $file) }}
{{- fail (printf "monitoring.nodeMetrics.statsFile %q must be an absolute path" $file) }}
{{- end }}
{{- if not (hasKey $settings "statsFile") }}
{{- $_ := set $settings "statsFile" $file }}
{{- end }}
{{- end }}
{{- toJson $settings }}
{{- end -}}

{{/* The directory of the statistics file, mounted at the same path in the installer pod. */}}
{{- define "flashvol.monitoring.statsDir" -}}
{{- .Values.monitoring.nodeMetrics.statsFile | default "/run/flashvol-flex/stats.json" | toString | dir }}
{{- end -}}

{{- define "flashvol.monitoring.flexArgs" -}}
{{- if include "flashvol.monitoring.nodeMetricsOn" . -}}
- --metrics-address=0.0.0.0:{{ int (.Values.monitoring.nodeMetrics.port | default 9809) }}
{{- end }}
{{- end -}}

{{- define "flashvol.monitoring.flexPorts" -}}
{{- if include "flashvol.monitoring.nodeMetricsOn" . -}}
ports:
  - name: metrics
    containerPort: {{ int (.Values.monitoring.nodeMetrics.port | default 9809) }}
    protocol: TCP
{{- end }}
{{- end -}}

{{/* Scrape annotations of the pure-flex pods, for a Prometheus that discovers pods by the
     prometheus.io/* annotations (as for the provisioner pod) rather than by PodMonitor. */}}
{{- define "flashvol.monitoring.flexAnnotations" -}}
{{- if include "flashvol.monitoring.nodeMetricsOn" . -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ int (.Values.monitoring.nodeMetrics.port | default 9809) | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{- define "flashvol.monitoring.flexVolumeMounts" -}}
{{- if include "flashvol.monitoring.nodeMetricsOn" . -}}
# The driver writes its call-out statistics here on the host; the installer only reads them.
- name: flex-stats
  mountPath: {{ include "flashvol.monitoring.statsDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "flashvol.monitoring.flexVolumes" -}}
{{- if include "flashvol.monitoring.nodeMetricsOn" . -}}
- name: flex-stats
  hostPath:
    path: {{ include "flashvol.monitoring.statsDir" . }}
    type: DirectoryOrCreate
{{- end }}
{{- end -}}

{{/* What NOTES.txt says about monitoring objects that were asked for but not rendered. */}}
{{- define "flashvol.monitoring.notes" -}}
{{- $asked := list }}
{{- if eq (toString .Values.monitoring.serviceMonitor.enabled | lower) "true" }}{{ $asked = append $asked "ServiceMonitor" }}{{ end }}
{{- if eq (toString .Values.monitoring.prometheusRule.enabled | lower) "true" }}{{ $asked = append $asked "PrometheusRule" }}{{ end }}
{{- if eq (toString .Values.monitoring.nodeMetrics.podMonitor.enabled | lower) "true" }}{{ $asked = append $asked "PodMonitor" }}{{ end }}
{{- if and $asked (not (include "flashvol.monitoring.operatorApi" .)) }}

WARNING: monitoring asks for {{ join ", " $asked }}, but this cluster does not serve
monitoring.coreos.com/v1 (no prometheus-operator CRDs, e.g. Rancher Monitoring not installed):
they were not created. Install the monitoring app, then upgrade this release.
{{- end }}
{{- end -}}
