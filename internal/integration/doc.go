// Package integration holds the privileged end-to-end tests of the netstack
// integration: a gVisor netstack running the AutoIP client on a real TAP
// device whose kernel side lives in a throw-away network namespace, probed
// and attacked by the kernel and by raw frames from that namespace. The tests
// skip with a message unless run as root; CI runs them as root.
package integration
