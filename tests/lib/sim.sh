# shellcheck shell=bash
# The array simulator (part of harness.sh): one flashvol-arraysim process serving two FlashArrays
# with different Labels and capacities (fa-a, fa-b) and one FlashBlade (fb-1) behind one test CA;
# the pure.json that names them; what is on them (/_sim/state), the faults they inject
# (/_sim/faults) and the space they report (/_sim/space, see tests/arraysim/README.md); plain REST
# calls, as an administrator's script would make them.
#
# The queries and REST calls serve any simulator that reports its arrays in a dir
# <SIM_DIR>/arrays.json (its config) and arrays.jsonl (its report): this harness's (SIM_DIR
# unset: $WORKDIR/sim, one CA for every array in SIM_CA) and tests/node's (SIM_DIR=<node
# state>/sim, no SIM_CA: each array's own CA, as it reports it).

# Every simulated array, in pure.json's order.
SIM_ARRAYS=(fa-a fa-b fb-1)
# Capacities: fa-a is listed first in pure.json but has less room than fa-b, so a claim without
# a selector landing on fa-b proves that free space, not list order, decides. bench/run.sh
# raises both.
SIM_FA_A_CAPACITY=$((8 << 30))
SIM_FA_B_CAPACITY=$((12 << 30))

# sim_make_ca: one CA and one serving certificate for 127.0.0.1/localhost, used by every
# simulated array, so pure.json's single "flashvol.tls.caFile" (SIM_CA) pins all of them.
sim_make_ca() {
    local pki="$WORKDIR/pki"
    {
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/ca.key" &&
            openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=flashvol-e2e-array-ca" -days 2 -sha256 \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
                -out "$pki/ca.crt" &&
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/array.key" &&
            openssl req -new -key "$pki/array.key" -subj "/CN=flashvol-e2e-array" -out "$pki/array.csr" &&
            printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
                'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1,DNS:localhost' >"$pki/array.ext" &&
            openssl x509 -req -in "$pki/array.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
                -days 2 -sha256 -extfile "$pki/array.ext" -out "$pki/array.crt"
    } >>"$WORKDIR/logs/openssl.log" 2>&1 || log_die "openssl failed (see $WORKDIR/logs/openssl.log)"
    chmod 600 "$pki"/*.key
    SIM_CA="$pki/ca.crt"
    workdir_save SIM_CA
}

# sim_start: serves fa-a, fa-b (FlashArrays) and fb-1 (FlashBlade) from one simulator process,
# each on a port of its own choosing, reported in sim/arrays.jsonl. SIM_PERSIST=false keeps
# their state in memory only (benchmarks; sim_restart_same_ports then starts them empty).
sim_start() {
    local config="$WORKDIR/sim/arrays.json" pki="$WORKDIR/pki" persist="${SIM_PERSIST:-true}"
    [[ "$persist" == true || "$persist" == false ]] || log_die "SIM_PERSIST must be true or false, not '$persist'"
    jq -n --arg cert "$pki/array.crt" --arg key "$pki/array.key" --arg root "$WORKDIR/sim/state" \
        --argjson a "$SIM_FA_A_CAPACITY" --argjson b "$SIM_FA_B_CAPACITY" --argjson persist "$persist" '{
        state_root: $root,
        persist: $persist,
        arrays: [
          {kind: "flasharray", name: "fa-a", listen: "127.0.0.1:0", api_token: "e2e-token-fa-a",
           capacity: $a, iscsi_portals: ["127.0.0.1:3260"], tls_cert: $cert, tls_key: $key},
          {kind: "flasharray", name: "fa-b", listen: "127.0.0.1:0", api_token: "e2e-token-fa-b",
           capacity: $b, iscsi_portals: ["127.0.0.1:3261"], tls_cert: $cert, tls_key: $key},
          {kind: "flashblade", name: "fb-1", listen: "127.0.0.1:0", api_token: "T-e2e-token-fb-1",
           capacity: "1T", data_vips: ["127.0.0.2"], tls_cert: $cert, tls_key: $key}
        ]}' >"$config"
    sim_launch "$config" "$WORKDIR/sim/arrays.jsonl" || log_die "the simulator did not start"
    log_info "simulated arrays: $(jq -rs 'map("\(.name) \(.endpoint)") | join(", ")' "$WORKDIR/sim/arrays.jsonl")"
}

# sim_restart_same_ports: stops the simulator process and serves the same arrays again on the
# same ports from the state on disk, as an array's management service restarting would look to
# the provisioner (connections refused for a moment, then the same endpoint). Faults are not
# kept across the restart.
sim_restart_same_ports() {
    local config="$WORKDIR/sim/arrays.json" fixed="$WORKDIR/sim/arrays-fixed.json" fresh="$WORKDIR/sim/arrays.jsonl.new"
    jq --slurpfile live "$WORKDIR/sim/arrays.jsonl" \
        '.arrays |= map(. as $a | .listen = ([$live[] | select(.name == $a.name)][0].endpoint))' \
        "$config" >"$fixed" || return 1
    sim_stop
    sim_launch "$fixed" "$fresh" || return 1
    mv "$fresh" "$WORKDIR/sim/arrays.jsonl"
}

# sim_launch CONFIG REPORT: starts the simulator on CONFIG, its report (one JSON line per array)
# going to REPORT, and waits (30 s at most) until it reports every array; non-zero, after
# saying why, when it exits or is late.
sim_launch() {
    local config="$1" report="$2" pid deadline=$((SECONDS + 30))
    setsid "$WORKDIR_BIN/flashvol-arraysim" --config "$config" \
        </dev/null >"$report" 2>>"$WORKDIR/logs/arraysim.log" &
    pid=$!
    echo "$pid" >"$WORKDIR/pids/arraysim"
    until [[ $(grep -c '"admin_url"' "$report" 2>/dev/null) == "${#SIM_ARRAYS[@]}" ]]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log_info "the simulator exited: $(tail -n 5 "$WORKDIR/logs/arraysim.log")"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log_info "the simulator did not report its ${#SIM_ARRAYS[@]} arrays within 30s (see $WORKDIR/logs/arraysim.log)"
            return 1
        fi
        sleep 0.1
    done
}

sim_stop() {
    [[ -n "${WORKDIR:-}" ]] || return 0
    workdir_signal "$WORKDIR/pids/arraysim" "$WORKDIR_BIN/flashvol-arraysim" TERM
}

# sim_write_pure_json FILE: PSO's pure.json for the three simulated arrays, with the test CA.
sim_write_pure_json() {
    jq -n --arg faa "$(sim_field fa-a endpoint)" --arg fab "$(sim_field fa-b endpoint)" \
        --arg fb "$(sim_field fb-1 endpoint)" --arg ca "$SIM_CA" '{
        FlashArrays: [
          {MgmtEndPoint: $faa, APIToken: "e2e-token-fa-a", Labels: {rack: "a"}},
          {MgmtEndPoint: $fab, APIToken: "e2e-token-fa-b", Labels: {rack: "b"}}
        ],
        FlashBlades: [
          {MgmtEndPoint: $fb, APIToken: "T-e2e-token-fb-1", NfsEndPoint: "127.0.0.2", Labels: {rack: "f"}}
        ],
        flashvol: {tls: {caFile: $ca}}
      }' >"$1"
    chmod 600 "$1"
}

# sim_dir: where the simulator's config and report are.
sim_dir() { echo "${SIM_DIR:-$WORKDIR/sim}"; }

# sim_field ARRAY FIELD: endpoint, admin_url or ca_cert of a simulated array.
sim_field() {
    local value
    value="$(jq -rs --arg n "$1" --arg f "$2" 'map(select(.name == $n))[0][$f] // empty' "$(sim_dir)/arrays.jsonl")"
    [[ -n "$value" ]] || check_fail "no simulated array named $1"
    echo "$value"
}

# sim_ca ARRAY: the CA that verifies the array: SIM_CA when one CA serves all, else its own.
sim_ca() { echo "${SIM_CA:-$(sim_field "$1" ca_cert)}"; }

# sim_admin ARRAY PATH [CURL_ARG...]: https://<array>/_sim/PATH (GET unless CURL_ARGs say).
sim_admin() {
    curl -fsS --max-time 10 --cacert "$(sim_ca "$1")" "${@:3}" "$(sim_field "$1" admin_url)/$2"
}

# sim_admin_send ARRAY METHOD PATH [JSON]: a change through the admin API of one array, e.g.
# sim_admin_send fa-b PUT faults '{"drop_rate": 1}' or sim_admin_send fa-a PUT space '{"used": N}'
# (see tests/arraysim/README.md).
sim_admin_send() {
    sim_admin "$1" "$3" -X "$2" ${4:+-H 'Content-Type: application/json' -d "$4"} >/dev/null
}

# sim_set_faults JSON: replaces the fault set of every simulated array; sim_clear_faults removes
# them. Both try every array and fail when one did not take it.
sim_set_faults() { sim_faults_on_all POST "$1"; }
sim_clear_faults() { sim_faults_on_all DELETE; }
sim_faults_on_all() {
    local array rc=0
    for array in "${SIM_ARRAYS[@]}"; do
        sim_admin "$array" faults -X "$1" ${2:+-d "$2"} >/dev/null || rc=1
    done
    return "$rc"
}
# sim_set_faults_on ARRAY JSON: replaces the fault set of one array ('{}' clears it).
sim_set_faults_on() { sim_admin_send "$1" PUT faults "$2"; }

# sim_volume_state ARRAY NAME: live, destroyed or absent (FlashArray volume or FlashBlade file
# system).
sim_volume_state() {
    sim_admin "$1" state | jq -r --arg v "$2" '
        ((.volumes // .file_systems)[$v]) as $o
        | if $o == null then "absent" elif $o.destroyed_at == null then "live" else "destroyed" end'
}
sim_volume_destroyed() { [[ "$(sim_volume_state "$1" "$2")" == destroyed ]]; }

# sim_object_size ARRAY NAME: bytes of a FlashArray volume or a FlashBlade file system's
# provisioned size (its hard limit when enabled).
sim_object_size() {
    sim_admin "$1" state | jq -r --arg v "$2" '(.volumes[$v].size // .file_systems[$v].settings.provisioned) // empty'
}
sim_object_size_is() { [[ "$(sim_object_size "$1" "$2")" == "$3" ]]; }

# sim_set_capacity ARRAY CAPACITY|reset: the array's usable capacity from now on ("1P"), or the
# configured one again, as an administrator adding or removing shelves.
sim_set_capacity() {
    if [[ "$2" == reset ]]; then
        sim_admin "$1" capacity -X DELETE >/dev/null
    else
        sim_admin "$1" capacity -X PUT -d "$(jq -cn --arg c "$2" '{capacity: $c}')" >/dev/null
    fi
}

# sim_live_volumes ARRAY: names of the live (not destroyed) volumes / file systems, sorted.
sim_live_volumes() {
    sim_admin "$1" state | jq -r '(.volumes // .file_systems) | to_entries[]
        | select(.value.destroyed_at == null and (.value.snapshot_of // null) == null) | .key' | sort
}

# sim_live_everywhere: every live object named like the provisioner names them
# (PROV_NAME_PREFIX-pvc-*) on every array, one line each, sorted (duplicates kept).
sim_live_everywhere() {
    local array
    for array in "${SIM_ARRAYS[@]}"; do sim_live_volumes "$array"; done | grep "^$PROV_NAME_PREFIX-pvc-" | sort || true
}

# sim_none_live NAMES: none of the named objects (one per line) is live on any array.
sim_none_live() { [[ -z "$(sim_live_everywhere | grep -Fx -f <(echo "$1") || true)" ]]; }

# sim_connections_of ARRAY VOLUME: the hosts the volume is connected to, one per line.
sim_connections_of() {
    sim_admin "$1" state | jq -r --arg v "$2" '.connections[] | select(.volume == $v) | .host'
}
# sim_connected ARRAY VOLUME: the volume is connected to some host; sim_not_connected: to none.
sim_connected() { [[ -n "$(sim_connections_of "$1" "$2")" ]]; }
sim_not_connected() { ! sim_connected "$1" "$2"; }

# sim_array_holding NAME: which simulated array has a live object of that name.
sim_array_holding() {
    local array
    for array in "${SIM_ARRAYS[@]}"; do
        if [[ "$(sim_volume_state "$array" "$1")" == live ]]; then
            echo "$array"
            return 0
        fi
    done
    return 1
}

# sim_token ARRAY: the array's API token, from the simulator's config.
sim_token() { jq -r --arg n "$1" '.arrays[] | select(.name == $n) | .api_token' "$(sim_dir)/arrays.json"; }

# sim_fa_rest ARRAY METHOD PATH [JSON]: one FlashArray REST 1.x call with a fresh session, the
# way an administrator's script would (api_token → session cookie).
sim_fa_rest() {
    local array="$1" method="$2" path="$3" body="${4:-}" base ca version jar
    base="$(sim_field "$array" endpoint)"
    base="https://${base#https://}"
    ca="$(sim_ca "$array")"
    version="$(curl -fsS --cacert "$ca" "$base/api/api_version" | jq -r '.version[-1]')"
    jar="$(mktemp "$(sim_dir)/cookies.XXXXXX")"
    curl -fsS --cacert "$ca" -c "$jar" -H 'Content-Type: application/json' \
        -d "$(jq -n --arg t "$(sim_token "$array")" '{api_token: $t}')" "$base/api/$version/auth/session" >/dev/null || {
        rm -f "$jar"
        return 1
    }
    local rc=0
    curl -fsS --cacert "$ca" -b "$jar" -H 'Content-Type: application/json' -X "$method" \
        ${body:+-d "$body"} "$base/api/$version/$path" || rc=$?
    rm -f "$jar"
    return "$rc"
}

# sim_fb_rest METHOD PATH [JSON]: one FlashBlade REST 1.x call on fb-1 (api-token login →
# x-auth-token), e.g. sim_fb_rest PATCH 'file-systems?names=x' '{"destroyed":true}'.
sim_fb_rest() {
    local method="$1" path="$2" body="${3:-}" base ca version auth
    base="$(sim_field fb-1 endpoint)"
    base="https://${base#https://}"
    ca="$(sim_ca fb-1)"
    version="$(curl -fsS --cacert "$ca" "$base/api/api_version" | jq -r '.versions[-1]')"
    auth="$(curl -fsS --cacert "$ca" -D - -o /dev/null -X POST -H "api-token: $(sim_token fb-1)" "$base/api/login" |
        tr -d '\r' | awk -F': ' 'tolower($1) == "x-auth-token" {print $2}')"
    [[ -n "$auth" ]] || return 1
    curl -fsS --cacert "$ca" -H "x-auth-token: $auth" -H 'Content-Type: application/json' -X "$method" \
        ${body:+-d "$body"} "$base/api/$version/$path"
}
