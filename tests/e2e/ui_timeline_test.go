package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The web view's pictures (issue 18): each record drawn as an SVG timeline
// (timeline.js recordTimeline) and each cluster's masters as a strip of
// tenures (masterStrip). TestUI_RendersFailover loads the page once after a
// real failover; these helpers check what it drew against the record the
// API returned, and take the screenshot docs/img/webview-timeline.png comes
// from (QUORUMHA_UPDATE_SCREENSHOT=1 rewrites it; a normal run does not).

// timelineScreenshotDoc is the committed screenshot, relative to this package.
const timelineScreenshotDoc = "../../docs/img/webview-timeline.png"

// downVoteCount is the number of down votes in a failover record's evidence
// (one per controller: the assessment keeps each one's newest verdict).
func downVoteCount(t *testing.T, ev json.RawMessage) int {
	t.Helper()
	var e struct {
		Assessment struct {
			Votes []struct {
				State string `json:"state"`
			} `json:"votes"`
		} `json:"assessment"`
	}
	if err := json.Unmarshal(ev, &e); err != nil {
		t.Fatalf("record evidence: %v: %s", err, ev)
	}
	n := 0
	for _, v := range e.Assessment.Votes {
		if v.State == "down" {
			n++
		}
	}
	return n
}

// checkTimelineDOM checks the rendered page has rec's timeline, with a bar
// per step, a marker per down vote, the decision, the fence proof and a
// time axis, and the cluster's master strip with the two tenures (old
// master, then the new). It reports each miss and returns false if any.
func checkTimelineDOM(t *testing.T, dom string, rec foRecord) bool {
	t.Helper()
	ok := true
	miss := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		ok = false
	}
	id := strconv.FormatUint(rec.ID, 10)
	m := regexp.MustCompile(`(?s)<svg class="timeline"[^>]*data-record="` + id + `"[^>]*>(.*?)</svg>`).FindStringSubmatch(dom)
	if m == nil {
		miss("no timeline SVG for record %s", id)
	} else {
		tl := m[1]
		if n := strings.Count(tl, `class="tl-step outcome-`); n != len(rec.Steps) {
			miss("timeline draws %d step bars, the record has %d steps", n, len(rec.Steps))
		}
		for _, s := range rec.Steps {
			want := `data-step="` + htmlAttr(s.Name) + `" data-outcome="` + htmlAttr(s.Outcome) + `"`
			if !strings.Contains(tl, want) {
				miss("timeline lacks step %s with outcome %s (%s)", s.Name, s.Outcome, want)
			}
			if !strings.Contains(tl, `class="tl-step outcome-`+s.Outcome+`"`) {
				miss("timeline has no bar coloured for outcome %q (step %s)", s.Outcome, s.Name)
			}
		}
		votes := downVoteCount(t, rec.Evidence)
		if votes == 0 {
			miss("the automatic failover's evidence has no down vote")
		}
		if n := strings.Count(tl, `class="tl-vote"`); n != votes {
			miss("timeline draws %d down votes, the evidence has %d", n, votes)
		}
		if n := strings.Count(tl, `class="tl-decision"`); n != 1 {
			miss("timeline draws %d decision markers, want 1", n)
		}
		if rec.Fence != nil && rec.Fence.State != "awaiting" {
			if !strings.Contains(tl, `>fence: `+htmlText(rec.Fence.Proof)+`</text>`) {
				miss("timeline lacks the fence proof %q", rec.Fence.Proof)
			}
		}
		for _, name := range []string{"promote", "repoint"} {
			if !strings.Contains(tl, `data-step="`+name+`"`) {
				miss("timeline lacks the %s step", name)
			}
		}
		if !strings.Contains(tl, `class="tl-tick" x="`) || !strings.Contains(tl, `>0 ms</text>`) {
			miss("timeline has no time axis starting at the first vote (0 ms)")
		}
	}
	sm := regexp.MustCompile(`(?s)<svg class="master-strip"[^>]*data-cluster="` + regexp.QuoteMeta(rec.Cluster) + `"[^>]*data-tenures="(\d+)"[^>]*>(.*?)</svg>`).FindStringSubmatch(dom)
	if sm == nil {
		miss("no master strip for cluster %s", rec.Cluster)
		return ok
	}
	if sm[1] != "2" {
		miss("master strip has %s tenures, want 2", sm[1])
	}
	strip := sm[2]
	if n := strings.Count(strip, `<g class="tenure`); n != 2 {
		miss("master strip draws %d tenure bands, want 2", n)
	}
	old := strings.Index(strip, `data-master="`+rec.OldMaster+`"`)
	cur := strings.Index(strip, `<g class="tenure current" data-master="`+rec.NewMaster+`"`)
	if old < 0 || cur < 0 || old > cur {
		miss("master strip does not show %s then %s (current): %s", rec.OldMaster, rec.NewMaster, strip)
	}
	for _, addr := range []string{rec.OldMaster, rec.NewMaster} {
		if !strings.Contains(strip, `>`+addr+`</text>`) {
			miss("master strip does not label a band %s", addr)
		}
	}
	return ok
}

// htmlAttr is s as the DOM serializer writes it in an attribute value.
func htmlAttr(s string) string {
	return strings.NewReplacer("&", "&amp;", `"`, "&quot;", "\u00a0", "&nbsp;").Replace(s)
}

// timelineScreenshot takes the page in its #pictures mode (the masters
// strip, then the history with the newest record's timeline open), checks it is not blank and, with
// QUORUMHA_UPDATE_SCREENSHOT=1, writes it to docs/img/webview-timeline.png.
func timelineScreenshot(ctx context.Context, t *testing.T, browser, url string) {
	t.Helper()
	shot := filepath.Join(t.TempDir(), "timeline.png")
	runChromium(ctx, t, browser, url+"#pictures", "--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", uiShotWidth, uiShotHeight))
	requireScreenshot(t, shot)
	if os.Getenv("QUORUMHA_UPDATE_SCREENSHOT") != "1" {
		return
	}
	b, err := os.ReadFile(shot)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(timelineScreenshotDoc), 0o755)
	}
	if err == nil {
		err = os.WriteFile(timelineScreenshotDoc, b, 0o644)
	}
	if err != nil {
		t.Fatalf("update %s: %v", timelineScreenshotDoc, err)
	}
	t.Logf("screenshot written to %s", timelineScreenshotDoc)
}
