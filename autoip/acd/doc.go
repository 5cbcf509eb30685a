// Package acd implements IPv4 Address Conflict Detection, as described in
// RFC 5227, as a deterministic state machine with no I/O.
//
// A Detector probes one candidate address, announces it, and then defends
// it. It never reads a clock, never sleeps and never draws global
// randomness: every method takes the current time, Deadline reports when it
// next wants HandleTimer, and AppendOutputs drains what it wants done (ARP
// frames to send, the address becoming ready, conflicts, defences). The
// caller performs those outputs in order. This is the shape of etcd raft's
// RawNode, and it lets a daemon, a simulator and a test drive the same code.
//
// The package knows nothing about choosing addresses (see package autoip),
// so it can be reused to check a static or DHCP-assigned address, as
// systemd's sd-ipv4acd and lwIP's acd.c are.
//
// # Conflict rules
//
// Classify is the single place that decides what an ARP frame means for an
// address. Its rules, with the RFC text they come from:
//
//   - A frame whose ARP sender hardware address is our own is our own frame
//     seen again (a bridge, hairpin or hub looped it back) and is never a
//     conflict (RFC 5227 §2.1.1: "...and the sender hardware address is not
//     the hardware address of the interface").
//   - A frame whose sender hardware address is all-zero, broadcast or
//     multicast cannot come from a real host; it is counted and ignored,
//     except when its sender IP is our candidate or address: that is a
//     conflict all the same, because RFC 3927 §2.5 says a host "MUST NOT
//     ignore conflicting ARP packets" (and it is still counted as a bad
//     sender).
//   - While probing (from Start until ANNOUNCE_WAIT after the last probe),
//     any ARP request or reply whose sender IP is the candidate is a
//     conflict (RFC 5227 §2.1.1), and so is an ARP probe (sender IP 0.0.0.0)
//     whose target IP is the candidate: another host is probing for it at
//     the same time.
//   - While bound, an ARP packet whose sender IP is our address is a
//     conflict (RFC 5227 §2.4). A probe for our bound address is not: the
//     stack answers it, and that answer is the defence (RFC 5227 §2.4 ¶1).
//   - An ordinary request asking for the address (sender IP another
//     address, target IP ours) is never a conflict.
//
// # Bind point
//
// The address becomes usable immediately after the first announcement is
// sent (BindAfterAnnouncement). RFC 3927 §2.4 says so in as many words ("The
// host may begin legitimately using the IP address immediately after sending
// the first of the two ARP Announcements"), RFC 5227 §2.3 agrees, and
// systemd does the same. Binding after the last announcement, as lwIP does,
// delays every claim by ANNOUNCE_INTERVAL*(ANNOUNCE_NUM-1) for no gain in
// safety: the probing phase has already ended by then.
//
// # Defence
//
// On a conflict while bound the DefendPolicy decides (RFC 5227 §2.4):
// DefendOnce (the default, option b) defends once per DEFEND_INTERVAL and
// gives the address up on a second conflict inside it; Abandon (option a)
// gives it up at once; DefendForever (option c) never gives it up and still
// sends at most one defensive announcement per DEFEND_INTERVAL.
package acd
