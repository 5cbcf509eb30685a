package main

import (
	"bytes"
	"strings"
	"testing"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestBadFlagsExit2(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"-hosts", "0"}, "-hosts 0 is out of range 1..10000"},
		{[]string{"-hosts", "-5"}, "-hosts -5 is out of range"},
		{[]string{"-hosts", "10001"}, "-hosts 10001 is out of range 1..10000"},
		{[]string{"-hosts", "many"}, `invalid value "many" for flag -hosts`},
		{[]string{"-seed", "-1"}, `invalid value "-1" for flag -seed`},
		{[]string{"-same-initial", "169.254.0.1"}, "-same-initial 169.254.0.1 is outside the usable link-local range 169.254.1.0-169.254.254.255"},
		{[]string{"-same-initial", "169.254.255.7"}, "-same-initial 169.254.255.7 is outside"},
		{[]string{"-same-initial", "10.0.0.1"}, "-same-initial 10.0.0.1 is outside"},
		{[]string{"-same-initial", "fe80::1"}, "-same-initial fe80::1 is outside"},
		{[]string{"-same-initial", "169.254.300.1"}, `-same-initial "169.254.300.1" is not an IPv4 address`},
		{[]string{"-delay", "0"}, "-delay 0 is out of range 1..8000 ms"},
		{[]string{"-delay", "8001"}, "-delay 8001 is out of range 1..8000 ms"},
		{[]string{"-delay", "-200"}, "-delay -200 is out of range"},
		{[]string{"-latency", "0"}, "-latency 0s is out of range"},
		{[]string{"-latency", "-1ms"}, "-latency -1ms is out of range"},
		{[]string{"-latency", "2m"}, "-latency 2m0s is out of range"},
		{[]string{"-latency", "fast"}, `invalid value "fast" for flag -latency`},
		{[]string{"-max", "0"}, "-max 0s is out of range"},
		{[]string{"-stagger", "-1s"}, "-stagger -1s is out of range"},
		{[]string{"-stagger", "25h"}, "-stagger 25h0m0s is out of range"},
		{[]string{"-defend", "sometimes"}, `defend policy "sometimes": want once, abandon or forever`},
		{[]string{"-defend", "forever"}, `not allowed for link-local addresses`},
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
		{[]string{"-hosts", "3", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runArgs(tt.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
		})
	}
}

func TestHelpExit0(t *testing.T) {
	code, stdout, stderr := runArgs("-h")
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	for _, f := range []string{"-hosts", "-seed", "-same-initial", "-delay", "-latency", "-max", "-stagger", "-defend", "-frames"} {
		if !strings.Contains(stderr, f) {
			t.Errorf("usage does not mention %s:\n%s", f, stderr)
		}
	}
	if stdout != "" {
		t.Errorf("stdout not empty: %q", stdout)
	}
}

// TestDemoStory is the documented demo: four hosts on one initial address;
// one keeps it, three detect the conflict and move.
func TestDemoStory(t *testing.T) {
	code, stdout, stderr := runArgs("-hosts", "4", "-same-initial", "169.254.20.20")
	if code != 0 || stderr != "" {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	var conflicts, binds, probesOfInitial int
	keepers := 0
	for _, line := range strings.Split(stdout, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "host" {
			continue
		}
		event, addr := f[4], f[5]
		switch {
		case event == "CONFLICT" && addr == "169.254.20.20":
			conflicts++
			if !strings.Contains(line, "02:00:00:00:00:") {
				t.Errorf("conflict line does not name the other host's MAC: %q", line)
			}
		case event == "BIND":
			binds++
			if addr == "169.254.20.20" {
				keepers++
			}
		case event == "PROBE" && addr == "169.254.20.20":
			probesOfInitial++
		}
	}
	if conflicts != 3 || binds != 4 || keepers != 1 {
		t.Errorf("%d conflicts on the initial address, %d binds, %d keepers; want 3, 4, 1:\n%s", conflicts, binds, keepers, stdout)
	}
	if !strings.Contains(stdout, "summary: 4/4 hosts bound, 4 unique addresses, last bind at ") {
		t.Errorf("no or wrong summary line:\n%s", stdout)
	}
	if !strings.HasPrefix(stdout, "# 4 hosts on an ideal segment, all starting on 169.254.20.20; seed 1") {
		t.Errorf("no or wrong header:\n%s", stdout)
	}
	_, again, _ := runArgs("-hosts", "4", "-same-initial", "169.254.20.20")
	if again != stdout {
		t.Errorf("two runs differ:\n%s\n---\n%s", stdout, again)
	}
	_, other, _ := runArgs("-hosts", "4", "-same-initial", "169.254.20.20", "-seed", "2")
	if other == stdout {
		t.Error("-seed 2 prints the same story as -seed 1")
	}
}

func TestOtherFlagsWork(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-hosts", "1"},
		{"-hosts", "25", "-seed", "99"},
		{"-delay", "200", "-hosts", "5"},
		{"-delay", "1", "-same-initial", "169.254.1.0", "-hosts", "6"},
		{"-delay", "8000", "-same-initial", "169.254.254.255"},
		{"-latency", "250ms", "-same-initial", "169.254.7.7", "-defend", "abandon"},
		{"-stagger", "15s", "-same-initial", "169.254.7.7", "-frames"},
	} {
		code, stdout, stderr := runArgs(args...)
		if code != 0 || stderr != "" {
			t.Errorf("%q: exit code %d, stderr %q", args, code, stderr)
		}
		if !strings.Contains(stdout, "summary: ") || !strings.Contains(stdout, "unique addresses") {
			t.Errorf("%q: no summary:\n%s", args, stdout)
		}
	}
	_, stdout, _ := runArgs("-delay", "200")
	if !strings.Contains(stdout, "QNX delay=200 timing") {
		t.Errorf("-delay 200 not reported in the header:\n%s", stdout)
	}
	_, stdout, _ = runArgs("-frames", "-hosts", "2")
	if !strings.Contains(stdout, " SEND ") || !strings.Contains(stdout, "announcement") {
		t.Errorf("-frames shows no frames:\n%s", stdout)
	}
}

func TestNotQuietExit1(t *testing.T) {
	code, stdout, stderr := runArgs("-hosts", "3", "-max", "2s")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr, "not quiet") || !strings.Contains(stdout, "summary: ") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
}
