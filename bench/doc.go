// Package bench holds `make bench`: bench/run.sh runs every measurement and
// prints one markdown table; bench/aipbench is its helper (daemon claim
// times, RSS and idle CPU, the table itself). This package's only test is
// BenchmarkTAPRawFlood, the plain-TAP-reader baseline that run.sh sets
// against internal/integration's BenchmarkTAPFloodConflictDetection.
package bench
