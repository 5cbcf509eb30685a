// Package dhcp implements a DHCPv4 client, as described in RFC 2131, as a
// deterministic state machine with no I/O, in the shape of package autoip's
// Engine and etcd raft's RawNode: every input carries the current time,
// Deadline says when HandleTimer is next due, and AppendOutputs drains what
// the caller must do, in order (send a message, check an offered address
// with RFC 5227 conflict detection, configure or unconfigure a lease, save
// it, report an event). Randomness comes from a *rand.Rand the caller seeds.
// The daemon, the library (package stack) and the simulator drive the same
// code.
//
// # States (RFC 2131 §4.4, figure 5)
//
//	INIT -> SELECTING -> REQUESTING -> CHECKING -> BOUND -> RENEWING -> REBINDING
//	INIT-REBOOT (a saved lease) -> REBOOTING -> CHECKING -> BOUND
//
// CHECKING is where RFC 2131 §4.4.1 ("the client SHOULD perform a check on
// the suggested address") meets RFC 5227: the client asks its caller to
// probe the address (OutCheck) and only configures it once the probe found
// no other user (HandleCheck). An address in use is declined (DHCPDECLINE)
// and, after ten seconds (§3.1.5), another is requested.
//
// # Timing
//
//   - Start waits a random time before the first DHCPDISCOVER, in
//     [0, InitDelay] (default 1 s). RFC 2131 §4.4.1 suggests one to ten
//     seconds; that desynchronises a whole network booting at once, at the
//     price of up to ten seconds on every boot; set InitDelay to 10 s for
//     the RFC's figure.
//   - Retransmissions in SELECTING, REQUESTING and REBOOTING wait 4 s, then
//     8, 16, 32 and 64 s, each randomised by ±1 s (§4.1). REQUESTING and
//     REBOOTING give up after four retransmissions and start again in INIT.
//   - T1 and T2 are the server's (options 58 and 59) or 0.5 and 0.875 of
//     the lease (§4.4.5), then reduced by a random fuzz of up to 5 % so that
//     clients given leases together do not renew together. In RENEWING and
//     REBINDING a retransmission waits half the time left until T2 (or the
//     lease's end), at least 60 s (§4.4.5).
//   - A lease that expires is given up at once (EventLeaseLost).
//   - After a DHCPNAK the client starts again in INIT after one
//     retransmission delay (4 s), so that a server refusing every request
//     is not asked in a tight loop.
//
// # Coexistence with link-local (RFC 2563)
//
// With Config.AutoConfigure the client sends option 116 ("auto-configure")
// in its DHCPDISCOVER. A server that answers with option 116 = 0
// ("do not auto-configure") is reported by EventAutoConfigure with
// Allowed false; Allowed comes back true once a whole DHCPDISCOVER cycle
// (four retransmissions) went unanswered: the server is no longer heard.
package dhcp
