//go:build race

package hardening

// raceEnabled: the test binary runs under the race detector, so the daemon
// is built with it too.
const raceEnabled = true
