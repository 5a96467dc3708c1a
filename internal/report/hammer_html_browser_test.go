package report

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	partFlag = flag.String("html-screenshot-section", "", "ID=FILE: the browser test also saves the page's section#ID (e.g. faults, sweep) as a PNG in FILE")
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

// expectedCharts are the charts a hammer page must draw, as "kind label: n series":
// a timeline (per W/10, in the W before, L, 2L) per algorithm with one, a decisions
// chart (admitted, denied) per algorithm with decisions, a latency chart with a
// series per distribution it has, and a fault chart per algorithm and fail mode
// with a fault (admitted, denied, and each other kind some request was decided by).
func expectedCharts(h *Hammer) []string {
	var timeline, decisions, latency, faults []string
	for _, a := range h.Algorithms {
		if a.Timeline != nil && len(a.Timeline.Counts) > 0 {
			timeline = append(timeline, fmt.Sprintf("timeline %s: 4 series", a.Label()))
		}
		if a.Decisions != nil && len(a.Decisions.Allowed) > 0 {
			decisions = append(decisions, fmt.Sprintf("decisions %s: 2 series", a.Label()))
		}
		n := 0
		if len(a.CheckPercentiles) > 0 {
			n++
		}
		if len(a.E2EPercentiles) > 0 {
			n++
		}
		if n > 0 {
			latency = append(latency, fmt.Sprintf("latency %s: %d series", a.Label(), n))
		}
		if f := a.Fault; f != nil && len(f.Timeline.Admitted) > 0 {
			n := 2
			for _, kind := range [][]int64{f.Timeline.FailOpen, f.Timeline.FailClosed, f.Timeline.Local, f.Timeline.Errors} {
				var sum int64
				for _, c := range kind {
					sum += c
				}
				if sum > 0 {
					n++
				}
			}
			faults = append(faults, fmt.Sprintf("fault %s: %d series", a.Label(), n))
		}
	}
	return slices.Concat(timeline, decisions, latency, faults)
}

// expectedSimulateCharts are the charts a simulate page must draw: a timeline per
// algorithm with one when one policy ran, and a sweep chart (refused, admitted) per
// algorithm when several did.
func expectedSimulateCharts(s *Simulate) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range s.Algorithms {
		switch {
		case s.Sweep && !seen[a.Name]:
			seen[a.Name] = true
			out = append(out, fmt.Sprintf("sweep %s: 2 series", a.Name))
		case !s.Sweep && a.Timeline != nil && len(a.Timeline.Counts) > 0:
			out = append(out, fmt.Sprintf("timeline %s: 4 series", a.Name))
		}
	}
	return out
}

// writeHTMLFile writes a page with write to a file in dir.
func writeHTMLFile(t *testing.T, dir, name string, write func(io.Writer) error) string {
	t.Helper()
	page := filepath.Join(dir, name)
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return page
}

// pageCharts reads the charts a page must draw from the report it embeds, by the
// command that wrote it (script#page).
func pageCharts(t *testing.T, raw []byte) []string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script type="application/json" id="report">(.*?)</script>`).FindSubmatch(raw)
	meta := regexp.MustCompile(`(?s)<script type="application/json" id="page">(.*?)</script>`).FindSubmatch(raw)
	if m == nil || meta == nil {
		t.Fatal("the page has no embedded report or page notes")
	}
	var pm pageMeta
	if err := json.Unmarshal(meta[1], &pm); err != nil {
		t.Fatal(err)
	}
	switch pm.Command {
	case "hammer":
		var h Hammer
		if err := json.Unmarshal(m[1], &h); err != nil {
			t.Fatal(err)
		}
		return expectedCharts(&h)
	case "simulate":
		var s Simulate
		if err := json.Unmarshal(m[1], &s); err != nil {
			t.Fatal(err)
		}
		return expectedSimulateCharts(&s)
	}
	t.Fatalf("the page is of command %q", pm.Command)
	return nil
}

// TestHammerHTMLInABrowser loads the page in headless Chromium: it must render with
// no console error, no exception and no network request, and draw the charts the
// report calls for, each with its series; the screenshot is kept. -html-page loads a
// real run's page (hammer's or simulate's) instead of the sample's.
func TestHammerHTMLInABrowser(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	page := *pageFlag
	if page == "" {
		page = writeHTMLFile(t, dir, "report.html", func(w io.Writer) error { return HammerHTML(w, chartSample()) })
	}
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	want := pageCharts(t, raw)
	if *pageFlag == "" && len(want) != 18 {
		t.Fatalf("the sample calls for %d charts, want 18: %q", len(want), want)
	}
	browsePage(t, exe, dir, page, want, *shotFlag, *topFlag)
}

// TestHammerFaultHTMLInABrowser: with a fault, the page draws a fault chart per
// algorithm and fail mode besides the others, with the fail modes' series.
func TestHammerFaultHTMLInABrowser(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	h := sampleFaultHammer()
	page := writeHTMLFile(t, dir, "fault.html", func(w io.Writer) error { return HammerHTML(w, h) })
	want := expectedCharts(h)
	// open: admitted, denied, fail-open, errors; local: admitted, denied, local, errors.
	if !slices.Contains(want, "fault sliding-log/open: 4 series") || !slices.Contains(want, "fault sliding-log/local: 4 series") {
		t.Fatalf("the fault sample calls for %q", want)
	}
	browsePage(t, exe, dir, page, want, "", "")
}

// TestSimulateHTMLInABrowser: simulate's page, of one policy (the timeline) and of a
// sweep (the trade-off per algorithm), renders as hammer's does.
func TestSimulateHTMLInABrowser(t *testing.T) {
	exe := chromium(t)
	for _, sweep := range []bool{false, true} {
		t.Run(fmt.Sprintf("sweep=%v", sweep), func(t *testing.T) {
			dir := t.TempDir()
			s := sampleSimulate(sweep)
			page := writeHTMLFile(t, dir, "simulate.html", func(w io.Writer) error { return SimulateHTML(w, s) })
			want := expectedSimulateCharts(s)
			if len(want) != 2 {
				t.Fatalf("the sample calls for %q, want 2 charts", want)
			}
			browsePage(t, exe, dir, page, want, "", "")
		})
	}
}

// browsePage loads page in Chromium, checks that it drew exactly want with no
// console error, exception or network request, and saves its full-page screenshot
// (to shotPath, or in dir) and, with topPath, its first screen.
func browsePage(t *testing.T, exe, dir, page string, want []string, shotPath, topPath string) {
	t.Helper()
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
	if topPath != "" {
		top, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		if err := os.WriteFile(topPath, top, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if id, file, ok := strings.Cut(*partFlag, "="); ok && shotPath != "" {
		part, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("section#"+id)))
		if err != nil {
			t.Fatalf("chromium: section#%s: %v", id, err)
		}
		if err := os.WriteFile(file, part, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := shotPath
	if out == "" {
		out = filepath.Join(dir, strings.TrimSuffix(filepath.Base(page), ".html")+".png")
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
