#!/bin/sh
# dhcpcd `script` for the interop tests. dhcpcd configures the IPv4LL
# address itself; this only logs each reason (IPV4LL on bind and on drop,
# PREINIT, CARRIER, STOP, ...) to @LOG@.
echo "ts=$(@DATE@ +%s.%N) ev=${reason} if=${interface} addr=${new_ip_address} old=${old_ip_address}" >> '@LOG@'
