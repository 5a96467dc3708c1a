package algorithms_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// infoFields is one section of rdb's INFO as field → value ("used_cpu_sys" → "1.23",
// "cmdstat_evalsha" → "calls=3,usec=40,...").
func infoFields(tb testing.TB, rdb redis.UniversalClient, section string) map[string]string {
	tb.Helper()
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		tb.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// infoNumber is field of INFO's section as a number, 0 when INFO does not have it (a
// command not called since the last CONFIG RESETSTAT). With stat set, field is a
// commandstats line and the number is its stat ("calls", "usec", "usec_per_call").
func infoNumber(tb testing.TB, fields map[string]string, field, stat string) float64 {
	tb.Helper()
	v, ok := fields[field]
	if !ok {
		return 0
	}
	if stat != "" {
		found := false
		for _, kv := range strings.Split(v, ",") {
			if s, ok := strings.CutPrefix(kv, stat+"="); ok {
				v, found = s, true
				break
			}
		}
		if !found {
			tb.Fatalf("INFO %s: %q has no %s", field, v, stat)
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		tb.Fatalf("INFO %s: %q: %v", field, v, err)
	}
	return f
}
