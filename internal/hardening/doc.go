// Package hardening holds the project's hardening tests: long, hostile and
// repetitive runs that check the numbers a user relies on (counters, timings,
// saved state) stay true under abuse. It has no non-test code besides this
// comment.
//
// The privileged tests build cmd/autoipd once and run it in throw-away aip*
// network namespaces on a persistent TAP, with a kernel-side AF_PACKET socket
// as the rest of the link: a flood of random and malformed frames (R24), a
// rogue answering every probe (R11), a storm of conflicting ARP (R15, R16,
// R17), kill -9 at random moments (R04) and TAP down/up and delete/re-create
// cycles (R19). They skip without root; CI runs them as root.
//
// The unprivileged tests run the simulator (a 24 h soak of 1,000 hosts with
// loss and churn, and the probe-denial rate limit across a restart, in virtual
// time), the engine in virtual time, and fuzz targets for the parsers not
// fuzzed elsewhere: daemon.Parse (FuzzDaemonParse), scenario.Parse
// (FuzzScenarioParse) and persist.File.Load (FuzzPersistLoad).
//
// By default every test runs in its short form, sized for `go test -race
// ./...`. AIP_HARDEN_FULL=1 (what `make hardening` sets) selects the full
// sizes; each size can also be set on its own (see knobs_test.go):
//
//	AIP_HARDEN_FULL        1: full sizes (default: short)
//	AIP_HARDEN_SEED        seed of the random frames, kill moments and churn (default: fixed)
//	AIP_HARDEN_FRAMES      frames in the flood (short 50,000; full 1,000,000)
//	AIP_HARDEN_STORM       conflicting ARP frames in the storm (short 2,000; full 20,000)
//	AIP_HARDEN_KILLS       kill -9 cycles (short 10; full 50)
//	AIP_HARDEN_LINK_CYCLES TAP down/up + delete/re-create cycles (short 5; full 50)
//	AIP_HARDEN_RATE_WAIT   1: measure real 60 s rate-limit gaps with the daemon (full only by default)
//	AIP_HARDEN_SOAK_HOSTS  simulated hosts in the soak (short 100; full 1,000)
//	AIP_HARDEN_SOAK_TIME   virtual duration of the soak (short 1h; full 24h)
//	AIP_HARDEN_SOAK_LOSS   loss probability in the soak (default 0.05)
//	AIP_HARDEN_SOAK_UNFILTERED 1: every host hears every broadcast, as on a hub (full only by default)
package hardening
