package report

import (
	"fmt"
	"io"
	"strconv"

	"github.com/olekukonko/tablewriter"

	"github.com/ratelab/ratelab/algorithms"
)

// InspectKeyTable writes one key for a terminal: name, type, TTL, raw content, and
// its state in words.
func InspectKeyTable(w io.Writer, k InspectKey) error {
	k.Summary = DescribeKey(k)
	ew := &errWriter{w: w}
	ew.printf("key      %s\n", Shown(k.Key))
	ew.printf("type     %s\n", k.Type)
	ew.printf("ttl      %s\n", inspectTTL(k.TTLMillis))
	switch {
	case k.Hash != nil:
		ew.printf("content  %s\n", inspectHash(k.Hash))
	case k.ZSet != nil:
		ew.printf("content  %s", inspectZSet(k.ZSet, k.TimeMicros))
	case k.Value != nil:
		ew.printf("value    %s\n", inspectValue(*k.Value))
	}
	if k.Product != nil && k.Product.Value != nil {
		ew.printf("value    %s\n", inspectValue(*k.Product.Value))
	}
	if k.Lock != nil {
		ew.printf("lock     %s\n", inspectLockWords(*k.Lock))
	}
	ew.printf("state    %s\n", k.Summary)
	return ew.err
}

// InspectIdentityTable writes every limiter key of one identity for a terminal: a
// line saying how many, then a table of key, TTL and state.
func InspectIdentityTable(w io.Writer, r InspectIdentity) error {
	if len(r.Keys) == 0 {
		_, err := fmt.Fprintf(w, "no limiter keys for %s under %s: on %s\n", r.Identity, r.Prefix, r.Backend)
		return err
	}
	if _, err := fmt.Fprintf(w, "%d limiter keys for %s under %s: on %s\n", len(r.Keys), r.Identity, r.Prefix, r.Backend); err != nil {
		return err
	}
	t := tablewriter.NewTable(w)
	t.Header("key", "ttl", "state")
	for _, k := range r.Keys {
		if err := t.Append(Shown(k.Key), inspectTTL(k.TTLMillis), DescribeKey(k)); err != nil {
			return err
		}
	}
	return t.Render()
}

// InspectSummaryTable writes a summary of the keys under a prefix for a terminal:
// keys per kind and algorithm, memory, and loudly the keys without a TTL.
func InspectSummaryTable(w io.Writer, s InspectSummary) error {
	ew := &errWriter{w: w}
	ew.printf("%d keys under %s: on %s\n", s.Keys, s.Prefix, s.Backend)
	if s.Keys > 0 {
		t := tablewriter.NewTable(w)
		t.Header("kind", "algorithm", "keys")
		for _, kind := range []string{string(algorithms.KindLimiter), string(algorithms.KindProduct), string(algorithms.KindLock), string(algorithms.KindHealth), "undecodable"} {
			n := s.ByKind[kind]
			if n == 0 {
				continue
			}
			if kind == string(algorithms.KindLimiter) {
				names := algorithms.Names()
				for a := range s.ByAlgorithm {
					if algorithms.Lookup(a) != nil {
						names = append(names, a)
					}
				}
				for _, a := range names {
					if s.ByAlgorithm[a] > 0 {
						_ = t.Append(kind, a, strconv.FormatInt(s.ByAlgorithm[a], 10))
					}
				}
				continue
			}
			_ = t.Append(kind, "", strconv.FormatInt(n, 10))
		}
		if ew.err == nil {
			ew.err = t.Render()
		}
	}
	switch {
	case s.MemoryBytes < 0:
		ew.printf("memory   unknown: the server does not answer MEMORY USAGE\n")
	case s.MemoryEstimated:
		ew.printf("memory   about %s (estimated from %d sampled keys)\n", inspectBytes(s.MemoryBytes), s.MemorySampled)
	default:
		ew.printf("memory   %s\n", inspectBytes(s.MemoryBytes))
	}
	if s.WithoutTTL == 0 {
		ew.printf("no TTL   none (every key expires, as it must)\n")
	} else {
		ew.printf("\n!!! %d KEYS HAVE NO TTL: every key ratelab writes must expire. These never will:\n", s.WithoutTTL)
		for _, k := range s.WithoutTTLKeys {
			ew.printf("!!!   %s\n", Shown(k))
		}
		if more := s.WithoutTTL - int64(len(s.WithoutTTLKeys)); more > 0 {
			ew.printf("!!!   … and %d more\n", more)
		}
		switch ours := s.WithoutTTL - s.WithoutTTLUndecodable; {
		case s.WithoutTTLUndecodable == 0:
			ew.printf("!!! Report this as a bug; `ratelab flush` deletes them.\n")
		case ours == 0:
			ew.printf("!!! None of them is of a form ratelab writes, so `ratelab flush` leaves them alone: delete them yourself if they are yours.\n")
		default:
			ew.printf("!!! Report this as a bug; `ratelab flush` deletes the %d of a form ratelab writes, and leaves the other %d alone: delete those yourself if they are yours.\n",
				ours, s.WithoutTTLUndecodable)
		}
	}
	if n := s.ByKind["undecodable"]; n > 0 {
		ew.printf("\n%d keys under %s: are not of a form ratelab writes (flush leaves them alone):\n", n, s.Prefix)
		for _, k := range s.UndecodableKeys {
			ew.printf("  %s\n", Shown(k))
		}
		if more := n - int64(len(s.UndecodableKeys)); more > 0 {
			ew.printf("  … and %d more\n", more)
		}
	}
	return ew.err
}
