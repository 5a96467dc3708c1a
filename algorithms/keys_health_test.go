package algorithms_test

import (
	"errors"
	"testing"

	"github.com/ratelab/ratelab/algorithms"
)

// TestHealthKey: a node's probe key parses back as ratelab's; a tag that is no probe
// token does not.
func TestHealthKey(t *testing.T) {
	t.Parallel()
	ks := algorithms.MustKeyspace("ratelab")
	if got, err := ks.Parse(ks.Health("00ff9a")); err != nil || got.Kind != algorithms.KindHealth {
		t.Errorf("Parse(%q) = %+v, %v; want a health key", ks.Health("00ff9a"), got, err)
	}
	for _, key := range []string{"ratelab:health:{../etc}", "ratelab:health:{}", "ratelab:health:x:{00ff}"} {
		if _, err := ks.Parse(key); !errors.Is(err, algorithms.ErrUndecodable) {
			t.Errorf("Parse(%q) = %v; want ErrUndecodable", key, err)
		}
	}
}
