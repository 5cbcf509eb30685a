package scenario

import (
	"strings"
	"testing"
)

func TestScenarioParseErrors(t *testing.T) {
	cases := []struct {
		doc, want string
	}{
		{`{"name":"x","hosts":[{}],"bogus":1}`, `unknown field "bogus"`},
		{`{"name":"x","hosts":[{}],"duration":"5 minutes"}`, `duration "5 minutes"`},
		{`{"name":"x","hosts":[{}],"duration":300}`, `want a string such as "1.5s"`},
		{`{"name":"x","hosts":[]}`, "no hosts"},
		{`{"name":"x","hosts":[{"initial":"10.1.1.1"}]}`, "hosts[0]: invalid simulation configuration: initial address 10.1.1.1 is outside"},
		{`{"name":"x","hosts":[{"start":"soon"}]}`, `start "soon": want all, staggered or random`},
		{`{"name":"x","hosts":[{"start":"random"}]}`, "random start needs a window"},
		{`{"name":"x","hosts":[{"static":"169.254.3.3","count":2}]}`, "must have count 1"},
		{`{"name":"x","hosts":[{"defend":"fight"}]}`, `defend policy "fight"`},
		{`{"name":"x","hosts":[{"timing":{"probe_min":"3s"}}]}`, "PROBE_MIN (3s) is more than PROBE_MAX (2s)"},
		{`{"name":"x","hosts":[{"timing":{"qnx_delay_ms":9000}}]}`, "delay 9000 ms is out of range 1..8000 ms"},
		{`{"name":"x","hosts":[{}],"actors":[{"kind":"gremlin"}]}`, `actors[0]: invalid simulation configuration: actor kind "gremlin"`},
		{`{"name":"x","hosts":[{}],"events":[{"at":"1s","op":"explode"}]}`, `unknown op "explode"`},
		{`{"name":"x","hosts":[{}],"events":[{"at":"1s","op":"flap","hosts":[3]}]}`, "host 3 out of range 0..0"},
		{`{"name":"x","hosts":[{}],"events":[{"at":"1s","op":"flap"}]}`, "flap needs hosts or all"},
		{`{"name":"x","hosts":[{"count":2}],"events":[{"at":"1s","op":"partition","groups":[[0],[0,1]]}]}`, "host 0 is in two groups"},
		{`{"name":"x","hosts":[{}],"link":{"loss":2}}`, "link loss 2 is out of range 0..1"},
		{`{"name":"x","hosts":[{}],"expect":{"addr":{"7":"169.254.1.1"}}}`, `host key "7" is not a host index 0..0`},
		{`{"name":"x","hosts":[{}]} {}`, "trailing data"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.doc, err, c.want)
		}
	}
}
