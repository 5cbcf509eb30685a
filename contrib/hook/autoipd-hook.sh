#!/bin/sh
# autoipd-hook.sh: an example autoipd hook (autoipd -hook PATH).
#
# autoipd runs it directly, without a shell of its own, one call at a time,
# as
#     autoipd-hook.sh EVENT IFACE ADDRESS
# EVENT is BIND (the address is configured and announced), CONFLICT (a
# bound address was lost to another host), UNBIND (withdrawn: link down,
# or a routable address appeared) or STOP (autoipd is stopping). ADDRESS
# may be empty (STOP before any address). Details are in AUTOIPD_*
# variables: AUTOIPD_EVENT, AUTOIPD_IFACE, AUTOIPD_ADDRESS, AUTOIPD_MAC,
# AUTOIPD_PID, AUTOIPD_TIME, and for CONFLICT AUTOIPD_CONFLICT_MAC,
# AUTOIPD_PACKET_KIND and AUTOIPD_PHASE; AUTOIPD_REASON when autoipd gives
# one.
#
# What it prints is logged by autoipd line by line (the first 64 KiB of
# stdout and of stderr); a non-zero exit is logged, never fatal. It is
# killed, with everything it started, after -hook-timeout (10s by
# default) and when it returns: start long-running work with
# `setsid -f CMD` (a plain `setsid CMD &` may still be in the group when
# the hook returns, and be killed with it).
# This example logs the event and every AUTOIPD_* variable, and shows
# where to act.
set -u

event=${1:-}
iface=${2:-}
addr=${3:-}

echo "autoipd $event on $iface: address ${addr:-none}"
env | grep '^AUTOIPD_' | LC_ALL=C sort | sed 's/^/  /'

case $event in
BIND)
	# The address answers on the link now: announce a service, write
	# it where an application looks for it, ...
	;;
CONFLICT)
	echo "  lost to $AUTOIPD_CONFLICT_MAC ($AUTOIPD_PACKET_KIND); autoipd picks another address"
	;;
UNBIND | STOP)
	# The address is gone: undo what BIND did.
	;;
*)
	echo "unknown event '$event'" >&2
	exit 1
	;;
esac
exit 0
