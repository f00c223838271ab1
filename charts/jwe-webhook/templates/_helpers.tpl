{{/* The objects' base name: fullnameOverride, else the release name. */}}
{{- define "jwe-webhook.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "jwe-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels the pods are selected by. */}}
{{- define "jwe-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jwe-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "jwe-webhook.labels" -}}
{{ include "jwe-webhook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The Service's DNS name the apiserver calls. */}}
{{- define "jwe-webhook.serviceHost" -}}
{{ include "jwe-webhook.fullname" . }}.{{ .Release.Namespace }}.svc
{{- end -}}

{{- define "jwe-webhook.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* Fails the render unless exactly one key source is set. */}}
{{- define "jwe-webhook.checkKeys" -}}
{{- $local := .Values.keys.localKey.secretName -}}
{{- $config := .Values.keys.config -}}
{{- if and $local $config -}}
{{- fail "keys: set keys.localKey.secretName or keys.config, not both" -}}
{{- end -}}
{{- if not (or $local $config) -}}
{{- fail "keys: set keys.localKey.secretName (a Secret with a private key) or keys.config (a key configuration for Cloud KMS, Vault, ...)" -}}
{{- end -}}
{{- if and .Values.keys.vaultToken.enabled (not $config) -}}
{{- fail "keys.vaultToken: Vault's Kubernetes auth needs keys.config naming the Vault key" -}}
{{- end -}}
{{- end -}}

{{/*
The CA and certificates of certificates.source=generate, made once: an
existing Secret <fullname>-ca in the cluster is reused, with the serving and
client certificates it issued. Returns a dict of PEM strings as YAML.
*/}}
{{- define "jwe-webhook.generatedCerts" -}}
{{- $name := include "jwe-webhook.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $ca := lookup "v1" "Secret" $ns (printf "%s-ca" $name) -}}
{{- $tls := lookup "v1" "Secret" $ns (printf "%s-tls" $name) -}}
{{- $client := lookup "v1" "Secret" $ns (printf "%s-apiserver-client" $name) -}}
{{- if and $ca $tls $client -}}
caCert: {{ index $ca.data "tls.crt" | b64dec | quote }}
caKey: {{ index $ca.data "tls.key" | b64dec | quote }}
servingCert: {{ index $tls.data "tls.crt" | b64dec | quote }}
servingKey: {{ index $tls.data "tls.key" | b64dec | quote }}
clientCert: {{ index $client.data "tls.crt" | b64dec | quote }}
clientKey: {{ index $client.data "tls.key" | b64dec | quote }}
{{- else -}}
{{- $days := div (trimSuffix "h" .Values.certificates.caDuration | int) 24 | int -}}
{{- $newCA := genCA (printf "%s CA" $name) $days -}}
{{- $host := include "jwe-webhook.serviceHost" . -}}
{{- $serving := genSignedCert $host nil (list $host (printf "%s.cluster.local" $host)) (div (trimSuffix "h" .Values.certificates.servingDuration | int) 24 | int) $newCA -}}
{{- $cn := first .Values.clientAuth.allowedNames | default "kube-apiserver" -}}
{{- $clientCert := genSignedCert $cn nil nil (div (trimSuffix "h" .Values.certificates.clientDuration | int) 24 | int) $newCA -}}
caCert: {{ $newCA.Cert | quote }}
caKey: {{ $newCA.Key | quote }}
servingCert: {{ $serving.Cert | quote }}
servingKey: {{ $serving.Key | quote }}
clientCert: {{ $clientCert.Cert | quote }}
clientKey: {{ $clientCert.Key | quote }}
{{- end -}}
{{- end -}}
