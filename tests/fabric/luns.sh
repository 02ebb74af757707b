# shellcheck shell=sh
# Test fabric: what iscsiadm and udevd share: the configuration and the LUN records. Sourced.
#
# Configuration: FLASHVOL_FABRIC_CONFIG, else fabric.json next to the tools (kubelet runs the
# driver, and so the tools, with kubelet's environment). See tests/fabric/README.md.
# A LUN record <stateDir>/luns/<serial> holds "<loop device> <admin url of its array>".

conf=${FLASHVOL_FABRIC_CONFIG:-$here/fabric.json}
[ -f "$conf" ] || { echo "${0##*/} (fabric): no configuration at $conf (set FLASHVOL_FABRIC_CONFIG)" >&2; exit 7; }
# One jq run for all settings (each run costs ~15 ms); @sh quotes the values for eval. The
# FlashArrays become "<admin url> <CA file>" lines; the single-array shape (faAdminUrl) still works.
settings=$(jq -er '@sh "iqn=\(.initiator) sysfs=\(.sysfsRoot) devdir=\(.deviceDir) state=\(.stateDir)",
    @sh "arrays=\((.flashArrays // [{adminUrl: .faAdminUrl, caCert: .faCaCert}])
        | map("\(.adminUrl) \(.caCert)") | join("\n"))"' "$conf")
eval "$settings"

# teardown SERIAL: the LUN's loop device, by-id link, sysfs entries and record go.
teardown() {
    serial=$1
    record="$state/luns/$serial"
    [ -f "$record" ] || return 0
    read -r loop _ < "$record"
    losetup -d "$loop" 2>/dev/null || true
    rm -f "$devdir/wwn-0x624a9370$serial"
    rm -rf "$sysfs/block/${loop#/dev/}"
    rm -f "$record"
}

# delete_requested LOOP: 1 was written to the device's sysfs `delete` entry.
delete_requested() {
    [ "$(cat "$sysfs/block/${1#/dev/}/device/delete" 2>/dev/null || true)" = 1 ]
}
