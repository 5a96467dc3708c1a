package policy_test

import (
	"os"
	"strings"
	"testing"

	"github.com/ratelab/ratelab/internal/policy"
)

// TestDocsExamples loads every YAML example of docs/policies.md: the examples run as
// written, and the first one is the contract file, byte for byte.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	contract, err := os.ReadFile("testdata/issue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for rest := string(doc); ; {
		_, after, ok := strings.Cut(rest, "```yaml\n")
		if !ok {
			break
		}
		block, tail, ok := strings.Cut(after, "```\n")
		if !ok {
			t.Fatal("an unterminated yaml block")
		}
		blocks, rest = append(blocks, block), tail
	}
	if len(blocks) < 5 {
		t.Fatalf("%d yaml examples; want the contract, free/pro, login, shadow and the flags", len(blocks))
	}
	if blocks[0] != string(contract) {
		t.Fatalf("the first example is not the contract file:\n%s", blocks[0])
	}
	keys := func(string) ([]byte, error) { return []byte("key-pro-1 pro\nkey-ops-1 internal\n"), nil }
	for i, b := range blocks {
		p, err := policy.Parse("example", []byte(b), keys)
		if err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, b)
			continue
		}
		if len(p.Rules) == 0 {
			t.Errorf("example %d has no rules", i+1)
		}
	}
}
