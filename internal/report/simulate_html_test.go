package report

import (
	"bytes"
	"encoding/json"
	"html"
	"regexp"
	"strings"
	"testing"
)

// simulate's page is hammer's: nothing fetched, under 1 MiB, the JSON report in it
// whole, every table, and the text charts drawn instead (the timeline for one policy,
// the sweep for several).
func TestSimulateHTMLIsSelfContained(t *testing.T) {
	t.Parallel()
	for _, sweep := range []bool{false, true} {
		s := sampleSimulate(sweep)
		s.Trace.File = `<img src=x onerror=alert(1)>.log`
		var b bytes.Buffer
		if err := WriteSimulate(&b, FormatHTML, s); err != nil {
			t.Fatal(err)
		}
		page := b.String()
		if b.Len() > 1<<20 {
			t.Errorf("sweep %v: the page is %d bytes, more than 1 MiB", sweep, b.Len())
		}
		for _, re := range []*regexp.Regexp{regexp.MustCompile(`(?i)<[^>]+\s(src|href)\s*=`), regexp.MustCompile(`(?i)@import|url\(`)} {
			if m := re.FindString(page); m != "" {
				t.Errorf("sweep %v: the page fetches something: %q", sweep, m)
			}
		}
		m := regexp.MustCompile(`(?s)<script type="application/json" id="report">(.*?)</script>`).FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no embedded JSON report")
		}
		var back Simulate
		if err := json.Unmarshal([]byte(m[1]), &back); err != nil {
			t.Fatalf("the embedded report is not JSON: %v", err)
		}
		if len(back.Algorithms) != len(s.Algorithms) || back.Trace.File != s.Trace.File || len(back.Algorithms[0].Clients) != 2 {
			t.Errorf("sweep %v: the embedded report lost data: %+v", sweep, back)
		}
		text := html.UnescapeString(page)
		want := []string{"<h1>ratelab simulate</h1>", "What got through (virtual time", "Who paid: ", "Top clients by denials",
			">over L in their busiest W</th>", ">2001:db8::/64</td>", "40 did not parse"}
		chart, absent := `<section id="timeline">`, `<section id="sweep">`
		if sweep {
			chart, absent = absent, chart
		}
		for _, w := range append(want, chart) {
			if !strings.Contains(text, w) && !strings.Contains(page, w) {
				t.Errorf("sweep %v: the page lacks %q", sweep, w)
			}
		}
		for _, no := range []string{absent, `<section id="decisions">`, `<section id="latency">`, "<pre>"} {
			if strings.Contains(page, no) {
				t.Errorf("sweep %v: the page has %q", sweep, no)
			}
		}
	}
}

// With a fault, hammer's page has the fault timeline's chart section and the fault
// table, and not the terminal's text fault timeline.
func TestHammerFaultHTML(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := HammerHTML(&b, sampleFaultHammer()); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(b.String())
	for _, w := range []string{`<section id="faults">`, "Fault timeline: stall at +1s for 1s", "Fault: stall at +1s for 1s",
		">over-limit admitted</th>", ">sliding-log/local</td>", "12 (bound 12)", `"labels":["sliding-log/open","sliding-log/local"]`} {
		if !strings.Contains(page, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
	if strings.Contains(page, "<pre>") {
		t.Error("the page shows the terminal's fault timeline as text")
	}
	// Without a fault, no fault section.
	b.Reset()
	if err := HammerHTML(&b, chartSample()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `id="faults"`) {
		t.Error("a page without a fault has a fault section")
	}
}
