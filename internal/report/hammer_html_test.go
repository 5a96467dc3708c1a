package report

import (
	"bytes"
	"encoding/json"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/ratelab/ratelab/scenario"
)

// chartSample is the sample report with what the page's charts draw: the decisions
// over the run and the latency distributions, six algorithms, one without a timed check.
func chartSample() *Hammer {
	h := sixAlgorithms()
	for i := range h.Algorithms {
		a := &h.Algorithms[i]
		d := &Decisions{BucketMs: 50}
		for j := range 60 {
			d.Allowed = append(d.Allowed, int64(20+j%10))
			d.Denied = append(d.Denied, int64(25-j%10))
		}
		a.Decisions = d
		a.CheckPercentiles = []scenario.Percentile{{Percentile: 0, Us: 90}, {Percentile: 50, Us: 180}, {Percentile: 90, Us: 260},
			{Percentile: 99, Us: 640}, {Percentile: 99.9, Us: 1320}, {Percentile: 100, Us: 2410}}
		a.E2EPercentiles = []scenario.Percentile{{Percentile: 0, Us: 200}, {Percentile: 50, Us: 420}, {Percentile: 90, Us: 700},
			{Percentile: 99, Us: 1900}, {Percentile: 100, Us: 12000}}
	}
	last := &h.Algorithms[len(h.Algorithms)-1]
	last.CheckLatencyUnknown, last.CheckPercentiles = true, nil
	h.Embedded = true
	h.Valid, h.InvalidReasons = false, []string{"2.0% of sends were late (more than 1%): lower --rps"}
	return h
}

func TestHammerHTMLIsSelfContained(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteHammer(&b, FormatHTML, chartSample()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if b.Len() > 1<<20 {
		t.Errorf("the page is %d bytes, more than 1 MiB", b.Len())
	}
	// Nothing is fetched: no src or href attribute, no @import, no url() in the styles.
	for _, re := range []*regexp.Regexp{regexp.MustCompile(`(?i)<[^>]+\s(src|href)\s*=`), regexp.MustCompile(`(?i)@import|url\(`)} {
		if m := re.FindString(page); m != "" {
			t.Errorf("the page fetches something: %q", m)
		}
	}
	// The JSON report is in the page, whole.
	m := regexp.MustCompile(`(?s)<script type="application/json" id="report">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no embedded JSON report")
	}
	var back Hammer
	if err := json.Unmarshal([]byte(m[1]), &back); err != nil {
		t.Fatalf("the embedded report is not JSON: %v", err)
	}
	if len(back.Algorithms) != 6 || back.Algorithms[0].Decisions == nil || len(back.Algorithms[0].CheckPercentiles) != 6 {
		t.Errorf("the embedded report lost data: %+v", back.Algorithms[0])
	}
	text := html.UnescapeString(page)
	for _, want := range []string{
		`<section id="timeline">`, `<section id="decisions">`, `<section id="latency">`,
		"NOT VALID: 2.0% of sends were late", "in-process Redis: latency not representative",
		">burst ratio</th>", ">fill-lock waits</th>", ">first message</th>", "MISSED",
		"ratelab hammer: mixed, 6 algorithms", "uPlot 1.6.32",
	} {
		if !strings.Contains(text, want) && !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// The text timeline is drawn as a chart instead.
	if strings.Contains(page, "<pre>") {
		t.Error("the page shows the terminal's timeline as text")
	}
}

// A report's text cannot break out of the page: names and messages are escaped, and
// the JSON cannot end its script element.
func TestHammerHTMLEscapes(t *testing.T) {
	t.Parallel()
	h := chartSample()
	h.Algorithms[0].ErrorSet[0].Example = `</script><script>alert(1)</script><b>`
	var b bytes.Buffer
	if err := HammerHTML(&b, h); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>alert(1)") || strings.Contains(b.String(), "<b>") {
		t.Error("a message's markup reached the page unescaped")
	}
}
