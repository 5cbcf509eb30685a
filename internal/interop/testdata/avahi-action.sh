#!/bin/sh
# avahi-autoipd action script (-t) for the interop tests. The contract is
# that of /etc/avahi/avahi-autoipd.action: SCRIPT EVENT IFACE ADDRESS, EVENT
# in BIND, CONFLICT, UNBIND, STOP. Like the Debian default it puts the
# address on the interface with ip(8) (without the :avahi label, which would
# not fit in an aip* name, and without a default route), and it logs each
# event to @LOG@.
echo "ts=$(@DATE@ +%s.%N) ev=$1 if=$2 addr=$3" >> '@LOG@'
case "$1" in
BIND)
	exec @IP@ addr add "$3/16" brd 169.254.255.255 scope link dev "$2" ;;
CONFLICT|UNBIND|STOP)
	exec @IP@ addr del "$3/16" dev "$2" ;;
*)
	echo "unknown event $1" >&2
	exit 1 ;;
esac
