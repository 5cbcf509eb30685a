package daemon

import (
	"flag"
	"fmt"
)

// repeatableFlags may be given more than once: each -o adds options (a
// repeated option must keep its value, see parseOptions) and each -addr
// adds an address.
var repeatableFlags = map[string]bool{"o": true, "addr": true}

// onceValue wraps a single-valued flag so that giving it again with another
// value is refused instead of silently taking the last one (-i a -i b used
// to manage b). Giving it again with the same value is harmless.
type onceValue struct {
	flag.Value
	name  string
	first string
	set   bool
}

func (v *onceValue) Set(s string) error {
	if v.set {
		if s != v.first {
			return fmt.Errorf("-%s was already given as %q; a second value %q would silently replace it: give it once", v.name, v.first, s)
		}
		return nil
	}
	if err := v.Value.Set(s); err != nil {
		return err
	}
	v.first, v.set = s, true
	return nil
}

// IsBoolFlag keeps -d, -f, -v and the other booleans usable without a value.
func (v *onceValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// refuseConflictingRepeats wraps every single-valued flag of fs in a
// onceValue.
func refuseConflictingRepeats(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if !repeatableFlags[f.Name] {
			f.Value = &onceValue{Value: f.Value, name: f.Name}
		}
	})
}
