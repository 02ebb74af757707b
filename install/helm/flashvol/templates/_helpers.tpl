{{/* Labels every object gets. PSO's "app" labels stay on the pods for existing selectors. */}}
{{- define "flashvol.labels" -}}
app.kubernetes.io/name: flashvol
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{- end -}}

{{/* Image for both pods. PSO's image cannot run flashvol's commands, so it is replaced. */}}
{{- define "flashvol.image" -}}
{{- $name := .Values.image.name | default "ghcr.io/flashvol/flashvol" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- if hasPrefix "purestorage/k8s" $name -}}
{{- $name = "ghcr.io/flashvol/flashvol" -}}
{{- $tag = .Chart.AppVersion -}}
{{- end -}}
{{- printf "%s:%s" $name $tag -}}
{{- end -}}

{{/* kubelet's plugin dir on the host: an absolute path, a preset name, or "auto". */}}
{{- define "flashvol.flexPath" -}}
{{- $presets := dict
  "default" "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
  "rke" "/var/lib/kubelet/volumeplugins"
  "rancher" "/var/lib/kubelet/volumeplugins"
  "flatcar" "/var/lib/kubelet/volumeplugins"
  "coreos" "/var/lib/kubelet/volumeplugins"
  "gke" "/home/kubernetes/flexvolume"
  "openshift4" "/etc/kubernetes/kubelet-plugins/volume/exec"
  "aks" "/etc/kubernetes/volumeplugins"
  "kubespray" "/var/lib/kubelet/volume-plugins"
  "auto" "auto" -}}
{{- $raw := .Values.flexPath | default "default" | toString | trimSuffix "/" -}}
{{- if hasKey $presets $raw -}}
{{- get $presets $raw -}}
{{- else if and (hasPrefix "/" $raw) (not (contains ".." $raw)) -}}
{{- $raw -}}
{{- else -}}
{{- fail (printf "flexPath %q must be an absolute path, \"auto\" or one of the presets %s" $raw (keys $presets | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}

{{/* Scheduling: the component's own value, else PSO's deprecated top-level fallback. */}}
{{- define "flashvol.scheduling" -}}
{{- $own := index . 0 -}}
{{- $top := index . 1 -}}
{{- with ($own.nodeSelector | default $top.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with ($own.tolerations | default $top.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with ($own.affinity | default $top.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A value that must be one of a set, compared case-insensitively. */}}
{{- define "flashvol.oneOf" -}}
{{- $name := index . 0 -}}
{{- $value := index . 1 | toString -}}
{{- $allowed := index . 2 -}}
{{- if not (has (lower $value) $allowed) -}}
{{- fail (printf "%s %q must be one of %s" $name $value (join ", " $allowed)) -}}
{{- end -}}
{{- lower $value -}}
{{- end -}}

{{/* mount options: PSO wrote a string, PSO CSI a list. */}}
{{- define "flashvol.mountOptions" -}}
{{- $v := .Values.flasharray.defaultMountOpt -}}
{{- if kindIs "slice" $v -}}{{- join "," $v -}}{{- else -}}{{- $v | default "" | toString -}}{{- end -}}
{{- end -}}

{{/* The PSO chart's environment, common to both pods. */}}
{{- define "flashvol.pureEnv" -}}
- name: PURE_DISCOVERY_CONF
  value: /etc/pure/pure.json
- name: PURE_K8S_NAMESPACE
  value: {{ .Values.namespace.pure | default "k8s" | toString | quote }}
- name: PURE_DEFAULT_BLOCK_FS_TYPE
  value: {{ include "flashvol.oneOf" (list "flasharray.defaultFSType" (.Values.flasharray.defaultFSType | default "xfs") (list "xfs" "ext4" "ext3")) | quote }}
{{- end -}}

{{/* Where both pods find the arrays' CA of flashvol.tls.caCert: the Secret's key ca.pem. */}}
{{- define "flashvol.caPath" -}}/etc/pure/ca.pem{{- end -}}

{{/* flashvol.tls.caCert (the arrays' CA, PEM), checked; empty when not set. */}}
{{- define "flashvol.caCert" -}}
{{- $tls := (.Values.flashvol | default dict).tls | default dict -}}
{{- $pem := $tls.caCert | default "" | toString | trim -}}
{{- if $pem -}}
{{- if not (regexMatch "(?s)^-----BEGIN CERTIFICATE-----\\r?\\n.+-----END CERTIFICATE-----$" $pem) -}}
{{- fail "flashvol.tls.caCert must be the arrays' CA certificate(s) in PEM: -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----" -}}
{{- end -}}
{{- if $tls.caFile -}}
{{- fail "set flashvol.tls.caCert (the CA itself) or flashvol.tls.caFile (a path valid in the provisioner pod and on every node), not both" -}}
{{- end -}}
{{- printf "%s\n" $pem -}}
{{- end -}}
{{- end -}}

{{/* pure.json: PSO's arrays, plus a "flashvol" section only when flashvol-only values are set.
     flashvol.tls.caCert is not pure.json's: its file in the Secret is, as tls.caFile. */}}
{{- define "flashvol.pureJson" -}}
{{- $doc := include "flashvol.arrays" . | fromJson -}}
{{- $section := deepCopy (.Values.flashvol | default dict) -}}
{{- $ca := include "flashvol.caCert" . -}}
{{- if kindIs "map" (get $section "tls") -}}
{{- $tls := omit (get $section "tls") "caCert" -}}
{{- if $ca }}{{ $_ := set $tls "caFile" (include "flashvol.caPath" .) }}{{ end -}}
{{- if $tls }}{{ $_ := set $section "tls" $tls }}{{ else }}{{ $_ := unset $section "tls" }}{{ end -}}
{{- end -}}
{{- $file := dict -}}
{{- with .Values.flashblade.exportRules }}{{ $_ := set $file "exportRules" (toString .) }}{{ end -}}
{{- $hardLimit := .Values.flashblade.hardLimit | toString -}}
{{- if and (ne $hardLimit "") (ne $hardLimit "<nil>") -}}
{{- $_ := set $file "hardLimit" (eq (include "flashvol.oneOf" (list "flashblade.hardLimit" $hardLimit (list "true" "false"))) "true") -}}
{{- end -}}
{{- if $file -}}
{{- $_ := set $section "file" (merge $file (get $section "file" | default dict)) -}}
{{- end -}}
{{- if $section }}{{ $_ := set $doc "flashvol" $section }}{{ end -}}
{{- toJson $doc -}}
{{- end -}}

{{/* The arrays value as a map. Rancher's form gives it as a YAML or JSON string. */}}
{{- define "flashvol.arrays" -}}
{{- $arrays := .Values.arrays | default dict -}}
{{- if kindIs "string" $arrays -}}
{{- $parsed := fromYaml $arrays -}}
{{- if hasKey $parsed "Error" -}}
{{- fail (printf "arrays is not valid YAML or JSON: %s" (get $parsed "Error")) -}}
{{- end -}}
{{- $arrays = $parsed -}}
{{- end -}}
{{- if not (kindIs "map" $arrays) -}}
{{- fail "arrays must be a map with FlashArrays and/or FlashBlades lists (PSO's pure.json)" -}}
{{- end -}}
{{- toJson $arrays -}}
{{- end -}}
