#!/bin/sh
# autoipd -hook for the interop tests: autoipd runs it as HOOK EVENT IFACE
# ADDRESS (EVENT in BIND, CONFLICT, UNBIND, STOP) with AUTOIPD_* details in
# the environment. It appends one key=value line per event to @LOG@.
echo "ts=$(@DATE@ +%s.%N) ev=$1 if=$2 addr=$3 t=${AUTOIPD_TIME} cmac=${AUTOIPD_CONFLICT_MAC} kind=${AUTOIPD_PACKET_KIND} phase=${AUTOIPD_PHASE} src=${AUTOIPD_SOURCE} server=${AUTOIPD_LEASE_SERVER} reason=${AUTOIPD_REASON}" >> '@LOG@'
