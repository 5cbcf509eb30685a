package sim

import (
	"fmt"
	"math/rand"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/stack"
)

// How hosts' netstacks are built. A host is a gVisor stack with one NIC on
// its segment port: NIC -> Shim -> gVisor's Ethernet layer -> the port's
// channel endpoint, with the AutoIP client attached (stack.Attach) unless
// the host is a static incumbent. With Config.FullStacks it is exactly what
// stack.New builds (ipv4, arp, icmp, udp; no TCP). By default it is built
// the way an embedder would who knows the hosts carry nothing but ARP,
// sharing or leaving out gVisor state that ARP never touches:
//
//   - One IPv4 protocol factory for every host. ipv4.NewProtocolWithOptions
//     fills an 8 KiB IP-ID table from crypto/rand per factory (per stack
//     with ipv4.NewProtocol), but that table is dead state: IDs come from
//     the stack's SecureRNG. Sharing it saves 8 KiB, 18 KiB of garbage and
//     a getrandom call per host.
//   - One empty iptables for every host (gvstack.Options.IPTables): with no
//     rule ever added, gVisor skips them for every packet.
//   - No link resolution: a nested endpoint above the Shim clears
//     CapabilityResolutionRequired, so the NIC gets no neighbour cache (a
//     map presized to 512 entries, 38 KiB, the largest single cost of a
//     stack) and no NUD state. gVisor's ARP endpoint still answers requests
//     and probes for the host's addresses (it replies to the sender's MAC
//     without resolving), which is all the defence a host needs; a host
//     built this way cannot send IP, hence no transport protocols.
//
// The frames on the segment are the same either way: the library scenarios
// give byte-identical captures and reports (TestLeanStacksChangeNothing).
type protocols struct {
	ipv4   gvstack.NetworkProtocolFactory
	tables *gvstack.IPTables
}

func (p *protocols) init() {
	p.ipv4 = ipv4.NewProtocolWithOptions(ipv4.Options{})
	// The clock and generator are used only once a rule needs connection
	// tracking, which never happens.
	p.tables = gvstack.DefaultTables(nil, rand.New(rand.NewSource(1)))
}

// hostNIC is the ID of every host's NIC.
const hostNIC tcpip.NICID = stack.NICID

// arpOnly is the nested endpoint between a lean host's NIC and its Shim.
type arpOnly struct{ nested.Endpoint }

// Capabilities implements gvstack.LinkEndpoint: no link resolution.
func (l *arpOnly) Capabilities() gvstack.LinkEndpointCapabilities {
	return l.Endpoint.Capabilities() &^ gvstack.CapabilityResolutionRequired
}

// build builds h's netstack on its port as opts describes (Link, Clock,
// randomness, client).
func (s *Sim) build(h *host, opts stack.Options) error {
	if s.cfg.FullStacks {
		st, err := stack.New(opts)
		if err != nil {
			return err
		}
		h.gv, h.shim, h.client, h.closeStack = st.GVisor(), st.Shim(), st.Client(), st.Close
		return nil
	}
	shim, err := stack.NewShim(opts.Link)
	if err != nil {
		return err
	}
	gv := gvstack.New(gvstack.Options{
		// arp.NewProtocol leaves gVisor's IPv4 DAD disabled, as it must be.
		NetworkProtocols: []gvstack.NetworkProtocolFactory{s.protos.ipv4, arp.NewProtocol},
		Clock:            opts.Clock,
		RandSource:       opts.RandSource,
		SecureRNG:        opts.SecureRNG,
		IPTables:         s.protos.tables,
	})
	nic := &arpOnly{}
	nic.Endpoint.Init(shim, nic)
	if err := gv.CreateNICWithOptions(hostNIC, nic, gvstack.NICOptions{}); err != nil {
		gv.Destroy()
		return fmt.Errorf("create NIC: %s", err)
	}
	h.gv, h.shim = gv, shim
	h.closeStack = func() error {
		var err error
		if h.client != nil {
			err = h.client.Close()
		}
		gv.Destroy()
		return err
	}
	if opts.AutoIP != nil {
		c, err := stack.Attach(gv, hostNIC, shim, *opts.AutoIP)
		if err != nil {
			gv.Destroy()
			return err
		}
		h.client = c
	}
	return nil
}

// addStatic puts a static incumbent's address on its NIC, with an on-link
// route for its subnet, as stack.Stack.AddAddress does.
func addStatic(gv *gvstack.Stack, a netip.Addr) error {
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(a.As4()), PrefixLen: 16}}
	if err := gv.AddProtocolAddress(hostNIC, pa, gvstack.AddressProperties{PEB: gvstack.FirstPrimaryEndpoint}); err != nil {
		return fmt.Errorf("add address %v: %s", a, err)
	}
	gv.AddRoute(tcpip.Route{Destination: pa.AddressWithPrefix.Subnet(), NIC: hostNIC})
	return nil
}
