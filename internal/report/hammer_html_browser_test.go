package report

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

var (
	pageFlag = flag.String("html-page", "", "the browser test loads this page (a real run's --output html) instead of the sample's")
	shotFlag = flag.String("html-screenshot", "", "the browser test saves its full-page screenshot (PNG) here instead of in a temporary directory")
	topFlag  = flag.String("html-screenshot-top", "", "the browser test also saves the page's first screen (1280×900, PNG) here")
)

// chromium finds headless Chromium (Debian's package chromium), or skips the test;
// under CI=true its absence is a failure, as redis-server's is.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not on PATH, and CI=true requires it: install it (apt-get install chromium)")
	}
	t.Skip("chromium is not on PATH (apt-get install chromium)")
	return ""
}

// drawnChart is what the page's script says it drew.
type drawnChart struct {
	Kind      string   `json:"kind"`
	Algorithm string   `json:"algorithm"`
	Series    []string `json:"series"`
}

// expectedCharts are the charts a report's page must draw, as "kind algorithm: n
// series": a timeline (per W/10, in the W before, L, 2L) per algorithm with one, a
// decisions chart (admitted, denied) per algorithm with decisions, and a latency
// chart with a series per distribution it has.
func expectedCharts(h *Hammer) []string {
	var timeline, decisions, latency []string
	for _, a := range h.Algorithms {
		if a.Timeline != nil && len(a.Timeline.Counts) > 0 {
			timeline = append(timeline, fmt.Sprintf("timeline %s: 4 series", a.Name))
		}
		if a.Decisions != nil && len(a.Decisions.Allowed) > 0 {
			decisions = append(decisions, fmt.Sprintf("decisions %s: 2 series", a.Name))
		}
		n := 0
		if len(a.CheckPercentiles) > 0 {
			n++
		}
		if len(a.E2EPercentiles) > 0 {
			n++
		}
		if n > 0 {
			latency = append(latency, fmt.Sprintf("latency %s: %d series", a.Name, n))
		}
	}
	return append(append(timeline, decisions...), latency...)
}

// TestHammerHTMLInABrowser loads the page in headless Chromium: it must render with
// no console error, no exception and no network request, and draw the charts the
// report calls for, each with its series; the screenshot is kept.
func TestHammerHTMLInABrowser(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	page := *pageFlag
	if page == "" {
		page = filepath.Join(dir, "report.html")
		f, err := os.Create(page)
		if err != nil {
			t.Fatal(err)
		}
		if err := HammerHTML(f, chartSample()); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)<script type="application/json" id="report">(.*?)</script>`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("%s has no embedded report", page)
	}
	var h Hammer
	if err := json.Unmarshal(m[1], &h); err != nil {
		t.Fatal(err)
	}
	want := expectedCharts(&h)
	if *pageFlag == "" && len(want) != 18 {
		t.Fatalf("the sample calls for %d charts, want 18: %q", len(want), want)
	}
	abs, err := filepath.Abs(page)
	if err != nil {
		t.Fatal(err)
	}

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.WindowSize(1280, 900))
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// A bound for a browser that never answers, not a measurement: a loaded machine
	// takes seconds.
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	var mu sync.Mutex
	var problems []string
	note := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				note("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			what := d.Text
			if d.Exception != nil {
				what += " " + d.Exception.Description
			}
			note("exception at %d:%d: %s", d.LineNumber, d.ColumnNumber, what)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				note("log %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			if u := ev.Request.URL; !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
				note("a network request: %s", u)
			}
		}
	}); err != nil {
		t.Fatalf("chromium: %v", err)
	}

	// chromedp enables the runtime, log and network domains of the page itself.
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+abs), chromedp.WaitReady(chromedp.CSS("body[data-charts]"))); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	drawn, err := chromedp.Run(ctx, chromedp.Evaluate[[]drawnChart](`window.ratelabCharts`))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	plots, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".uplot canvas").length`))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if *topFlag != "" {
		top, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		if err := os.WriteFile(*topFlag, top, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := *shotFlag
	if out == "" {
		out = filepath.Join(dir, "report.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("the screenshot is %s (%d bytes)", out, len(shot))

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	var got []string
	for _, c := range drawn {
		got = append(got, fmt.Sprintf("%s %s: %d series", c.Kind, c.Algorithm, len(c.Series)))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the page drew\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if plots != len(want) {
		t.Errorf("%d chart canvases on the page, want %d", plots, len(want))
	}
	if len(shot) < 10_000 || string(shot[1:4]) != "PNG" {
		t.Errorf("the screenshot is not a PNG of a page (%d bytes)", len(shot))
	}
}
