#!/usr/bin/env bash
# make demo: a JWE Secret applied to a real etcd + kube-apiserver + webhook,
# seen as it sits in git, as the API returns it and as etcd stores it. The
# Makefile passes KUBE_APISERVER, KUBECTL, ETCD, WEBHOOK and JWE_ENCRYPT.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

echo "jwe-webhook demo"
echo "  The first run builds kube-apiserver, kubectl and etcd from source: about 5 minutes on 2 cores."
echo "  They are cached in bin/; later runs take seconds."
"${MAKE:-make}" --no-print-directory tools build

dir=$(mktemp -d "${TMPDIR:-/tmp}/jwe-webhook-demo.XXXXXX")

# Every process the demo starts names $dir on its command line, so pgrep -f
# finds any that outlived the demo.
cleanup() {
	local status=$? left
	left=$(pgrep -f -- "$dir" || true)
	if [[ -n $left ]]; then
		echo "demo: processes left behind, killing them: $(echo $left)" >&2
		kill -KILL $left 2>/dev/null || true
		status=1
	else
		echo "==> no process left behind (pgrep -f $dir finds none)"
	fi
	rm -rf "$dir"
	exit "$status"
}
trap cleanup EXIT

echo "==> building the demo program"
(cd test/e2e && go build -o "$dir/demo" ./cmd/demo)
"$dir/demo" --dir "$dir/run" --webhook-manifest "$root/manifests/base/mutatingwebhookconfiguration.yaml"
