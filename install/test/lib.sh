# Shared helpers of the install tests (sourced).
here_lib="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INSTALL_DIR="$(cd "${here_lib}/.." && pwd)"
ROOT_DIR="$(cd "${INSTALL_DIR}/.." && pwd)"
HELM="${INSTALL_DIR}/tools/helm.sh"
CHART="${INSTALL_DIR}/helm/flashvol"

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# The value of `- name: VAR` / `value: "..."` in rendered YAML on stdin, decoded.
env_value() {
    python3 -c '
import json, re, sys
text, name = sys.stdin.read(), sys.argv[1]
m = re.search(r"- name: " + re.escape(name) + r"\n\s+value: (.*)\n", text)
if not m:
    sys.exit("no env var " + name)
raw = m.group(1).strip()
print(json.loads(raw) if raw.startswith("\"") else raw)
' "$1"
}

# pure.json of the Secret in rendered YAML on stdin.
secret_pure_json() {
    sed -n 's/^  pure.json: "\{0,1\}\([A-Za-z0-9+\/=]*\)"\{0,1\}$/\1/p' | base64 -d
}

# Builds the flex binary (debug) once and prints its path.
flex_binary() {
    (cd "${ROOT_DIR}" && cargo build --quiet -p flashvol-flexdriver --bin flashvol-flex) >&2 ||
        fail "cargo build of flashvol-flex failed"
    echo "${ROOT_DIR}/target/debug/flashvol-flex"
}
