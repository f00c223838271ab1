#!/usr/bin/env bash
# make-certs.sh: certificates for jwe-webhook without cert-manager.
#
# Makes a CA (or reuses one), the webhook's serving certificate for
# <service>.<namespace>.svc, and the kube-apiserver's client certificate, and
# writes beside them what installs them:
#
#   kustomization.yaml          a kustomize Component: add it to an overlay
#   tls-secret.yaml             Secret jwe-webhook-tls (serving cert and key)
#   client-ca-configmap.yaml    ConfigMap jwe-webhook-client-ca (CAs the webhook
#                               accepts clients from)
#   cabundle-patch.yaml         the webhook configuration's caBundle
#   admission-configuration.yaml, webhook-kubeconfig.yaml
#                               for the kube-apiserver: it presents the client
#                               certificate to the webhook
#
# The output holds private keys (ca.key, tls.key, apiserver-client.key, and
# tls.key again inside tls-secret.yaml): apply it, keep ca.key offline, and
# commit none of it. See certs/README.md for installing and rotating.
set -euo pipefail

usage() {
	cat <<USAGE
Usage: $0 [options] OUTDIR

  -s, --service NAME      Service name (default jwe-webhook)
  -n, --namespace NAME    namespace (default jwe-webhook)
  -c, --client-name NAME  the apiserver's client certificate CN, which the
                          webhook's --client-allowed-names must list
                          (default kube-apiserver)
      --days N            validity of the serving and client certificates
                          (default 365); the CA gets ten times as long
      --ca-dir DIR        sign with DIR/ca.crt and DIR/ca.key instead of
                          making a new CA (renewing the leaf certificates)
      --also-trust FILE   PEM certificates to keep trusting beside the CA, in
                          caBundle and in the client CA bundle (the old CA
                          during a CA rotation)
      --node-dir DIR      where the apiserver's files go on control-plane
                          nodes (default /etc/kubernetes/jwe-webhook)
  -h, --help              this text

Example:
  $0 ./pki && kubectl apply -k my-overlay   # my-overlay lists ./pki as a component
USAGE
}

die() {
	echo "make-certs.sh: $*" >&2
	exit 1
}

service=jwe-webhook
namespace=jwe-webhook
client_name=kube-apiserver
days=365
ca_dir=
also_trust=
node_dir=/etc/kubernetes/jwe-webhook
out=
while [[ $# -gt 0 ]]; do
	case $1 in
	-s | --service) service=${2:?}; shift 2 ;;
	-n | --namespace) namespace=${2:?}; shift 2 ;;
	-c | --client-name) client_name=${2:?}; shift 2 ;;
	--days) days=${2:?}; shift 2 ;;
	--ca-dir) ca_dir=${2:?}; shift 2 ;;
	--also-trust) also_trust=${2:?}; shift 2 ;;
	--node-dir) node_dir=${2:?}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	-*) usage >&2; die "unknown option $1" ;;
	*) [[ -z $out ]] || die "one OUTDIR only"; out=$1; shift ;;
	esac
done
[[ -n $out ]] || { usage >&2; die "OUTDIR is required"; }
[[ $days =~ ^[1-9][0-9]*$ ]] || die "--days must be a positive number"
command -v openssl >/dev/null || die "openssl not found"
[[ -z $also_trust || -r $also_trust ]] || die "cannot read --also-trust file $also_trust"

umask 077
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
b64() { openssl base64 -A <"$1"; }

if [[ -n $ca_dir ]]; then
	[[ -r $ca_dir/ca.crt && -r $ca_dir/ca.key ]] || die "--ca-dir $ca_dir lacks ca.crt or ca.key"
	if [[ $(cd "$ca_dir" && pwd) != $(cd "$out" && pwd) ]]; then
		cp "$ca_dir/ca.crt" "$ca_dir/ca.key" "$out/"
	fi
else
	newkey "$out/ca.key"
	cat >"$work/ca.ext" <<EXT
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EXT
	# Date, time and a random tag: two CAs made the same day (the old and the
	# new of a rotation) must be told apart in logs and bundles.
	openssl req -new -key "$out/ca.key" -subj "/CN=jwe-webhook CA $(date -u +%Y-%m-%dT%H:%M:%SZ) $(openssl rand -hex 4)" -out "$work/ca.csr"
	openssl x509 -req -in "$work/ca.csr" -signkey "$out/ca.key" -days $((days * 10)) \
		-extfile "$work/ca.ext" -out "$out/ca.crt" 2>/dev/null
fi

# issue NAME SUBJECT-CN EXTENSIONS: NAME.key and NAME.crt signed by the CA.
issue() {
	newkey "$out/$1.key"
	printf '%s\n' "$3" >"$work/$1.ext"
	openssl req -new -key "$out/$1.key" -subj "/CN=$2" -out "$work/$1.csr"
	openssl x509 -req -in "$work/$1.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
		-CAserial "$work/ca.srl" -days "$days" -extfile "$work/$1.ext" -out "$out/$1.crt" 2>/dev/null
}

dns="$service.$namespace.svc"
issue tls "$dns" "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$dns, DNS:$dns.cluster.local
authorityKeyIdentifier = keyid"
issue apiserver-client "$client_name" "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid"

# What the apiserver trusts for the webhook and the webhook for clients.
cat "$out/ca.crt" ${also_trust:+"$also_trust"} >"$out/trust-bundle.crt"

cat >"$out/tls-secret.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: jwe-webhook-tls
  namespace: $namespace
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "$out/tls.crt")
  tls.key: $(b64 "$out/tls.key")
  ca.crt: $(b64 "$out/ca.crt")
YAML

{
	cat <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: jwe-webhook-client-ca
  namespace: $namespace
data:
  ca.crt: |
YAML
	sed 's/^/    /' "$out/trust-bundle.crt"
} >"$out/client-ca-configmap.yaml"

# A strategic-merge patch (webhooks merge by name): it sets caBundle and
# leaves the base's rules and matchConditions as they are.
cat >"$out/cabundle-patch.yaml" <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: jwe-webhook
webhooks:
  - name: secrets.jwe-webhook.io
    clientConfig:
      caBundle: $(b64 "$out/trust-bundle.crt")
YAML

cat >"$out/kustomization.yaml" <<YAML
# Written by certs/make-certs.sh: the certificates of one install. Add this
# directory to an overlay as a component; it holds private keys, keep it out
# of git.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - tls-secret.yaml
  - client-ca-configmap.yaml
patches:
  - path: cabundle-patch.yaml
YAML

# For the apiserver: its admission configuration names a kubeconfig whose
# user, keyed by the webhook's host (Service DNS name, :port unless 443),
# presents the client certificate.
cat >"$out/admission-configuration.yaml" <<YAML
# kube-apiserver --admission-control-config-file=$node_dir/admission-configuration.yaml
# Merge the plugins entry into an existing AdmissionConfiguration if there is one.
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: MutatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: $node_dir/webhook-kubeconfig.yaml
YAML

cat >"$out/webhook-kubeconfig.yaml" <<YAML
# The credentials the kube-apiserver presents to admission webhooks, by host.
apiVersion: v1
kind: Config
users:
  - name: $dns
    user:
      client-certificate: $node_dir/apiserver-client.crt
      client-key: $node_dir/apiserver-client.key
YAML

chmod 600 "$out"/*
chmod 644 "$out"/*.crt "$out"/*.yaml
chmod 600 "$out/tls-secret.yaml"
cat <<DONE
Wrote $out for https://$dns (client certificate CN=$client_name).
Next:
  1. Copy to every control-plane node, into $node_dir:
       apiserver-client.crt apiserver-client.key admission-configuration.yaml webhook-kubeconfig.yaml
     and start kube-apiserver with
       --admission-control-config-file=$node_dir/admission-configuration.yaml
  2. Add $out to your overlay as a component and apply it:
       components: [<path to $out>]
  3. Move $out/ca.key offline; it is needed only to renew (--ca-dir).
DONE
