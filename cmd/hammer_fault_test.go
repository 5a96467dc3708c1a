package cmd

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/productapi"
)

func TestHammerFaultFlags(t *testing.T) {
	o, code := parseHammer(t, "--fault", "stall@1s+500ms", "--fault", "latency@2s+200ms:20ms", "--fault", "restart@2500ms",
		"--fail-modes", "open,closed,local", "--local-share", "4", "--outage-after", "30ms",
		"--max-abuse-ratio", "0", "--max-good-refused-ratio", "0.5", "--max-recovery", "100ms")
	if code != commands.ExitOK || o == nil {
		t.Fatalf("exit %d", code)
	}
	wantFaults := []commands.Fault{
		{Kind: commands.FaultStall, Start: time.Second, Duration: 500 * time.Millisecond},
		{Kind: commands.FaultLatency, Start: 2 * time.Second, Duration: 200 * time.Millisecond, Arg: 20 * time.Millisecond},
		{Kind: commands.FaultRestart, Start: 2500 * time.Millisecond},
	}
	if !reflect.DeepEqual(o.Faults, wantFaults) {
		t.Errorf("faults %+v; want %+v", o.Faults, wantFaults)
	}
	if !reflect.DeepEqual(o.FailModes, []productapi.FailMode{productapi.FailOpen, productapi.FailClosed, productapi.FailLocal}) {
		t.Errorf("fail modes %v", o.FailModes)
	}
	if o.LocalShare != 4 || o.OutageAfter != 30*time.Millisecond || o.MaxRecovery != 100*time.Millisecond ||
		o.MaxAbuseRatio == nil || *o.MaxAbuseRatio != 0 || o.MaxGoodRefusedRatio == nil || *o.MaxGoodRefusedRatio != 0.5 {
		t.Errorf("share %d, outage after %s, max recovery %s, abuse %v, good refused %v",
			o.LocalShare, o.OutageAfter, o.MaxRecovery, o.MaxAbuseRatio, o.MaxGoodRefusedRatio)
	}
	if o, code := parseHammer(t, "--on-redis-error", "local"); code != commands.ExitOK || o.OnRedisError != productapi.FailLocal {
		t.Errorf("--on-redis-error local: exit %d, %+v", code, o)
	}
}

func TestHammerBadFaultFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--fault", "stall"}, "no @START"},
		{[]string{"--fault", "melt@1s+1s"}, `unknown kind "melt"`},
		{[]string{"--fault", "stall@1s"}, "stall needs +DURATION"},
		{[]string{"--fault", "stall@soon+1s"}, `START "soon"`},
		{[]string{"--fault", "stall@1s+0s"}, `DURATION "0s"`},
		{[]string{"--fault", "latency@1s+1s"}, "latency needs :D"},
		{[]string{"--fault", "latency@1s+1s:fast"}, `ARG "fast"`},
		{[]string{"--fault", "drop@1s+1s:5ms"}, "drop takes no :ARG"},
		{[]string{"--fault", "restart@1s+1s"}, "restart happens at one moment"},
		{[]string{"--fault", "stall@2s+2s"}, "ends after the run's --duration 3s"},
		{[]string{"--fault", "stall@1s+1s", "--fault", "drop@1500ms+1s"}, "overlaps"},
		{[]string{"--fault", "stall@1s+1s", "--store", "local"}, "--store local"},
		{[]string{"--fault", "stall@1s+1s", "--target", "http://127.0.0.1:8080"}, "cannot reach --target"},
		{[]string{"--fail-modes", "open,maybe"}, `on-redis-error "maybe"`},
		{[]string{"--fail-modes", "open,open"}, `"open" is listed twice`},
		{[]string{"--on-redis-error", "sometimes"}, `on-redis-error "sometimes"`},
		{[]string{"--local-share", "-2"}, "--local-share -2"},
		{[]string{"--max-abuse-ratio", "0.1"}, "give --fault too"},
		{[]string{"--fault", "stall@1s+1s", "--max-abuse-ratio", "3"}, "--max-abuse-ratio 3"},
	} {
		code, _, errOut := run(t, append([]string{"hammer"}, tt.args...)...)
		if code != commands.ExitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("ratelab hammer %q: exit %d, stderr %q; want exit 2 with %q", tt.args, code, errOut, tt.want)
		}
	}
}
