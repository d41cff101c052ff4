package chaos

import (
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Event is one point on the timeline: a fault, a heal, or a step of a
// failover record as the API showed it.
type Event struct {
	At    time.Time `json:"at"`
	Kind  string    `json:"kind"` // fault, heal, settled, opened, fence, promote, closed
	Label string    `json:"label"`
}

// Write is one write of a writer: when it was answered and whether it was
// acknowledged.
type Write struct {
	At  time.Time `json:"at"`
	OK  bool      `json:"ok"`
	Err string    `json:"err,omitempty"` // what a failed write was told
}

// RoundResult is what one round did and what the checkers found.
type RoundResult struct {
	N         int       `json:"n"`
	Faults    Round     `json:"faults"`
	Expect    string    `json:"expect_promotions"`
	Start     time.Time `json:"start"`
	FaultAt   time.Time `json:"fault_at"`
	HealAt    time.Time `json:"heal_at"`
	End       time.Time `json:"end"`
	OldMaster string    `json:"old_master"`
	NewMaster string    `json:"new_master"` // the master recorded by the API after the round
	Records   []uint64  `json:"failover_records"`
	// RecordsJSON are those records as GET /v1/history served them.
	RecordsJSON []json.RawMessage `json:"failover_records_json,omitempty"`
	Promotions  int               `json:"promotions"`
	// Unavailable is the group-side writer's longest stretch without an
	// acknowledged write between the fault and the end of the round.
	Unavailable time.Duration `json:"unavailable_ns"`
	// GapFrom and GapTo bound that stretch: the last ack before it (or
	// the fault) and the first after it (or the end of the round).
	GapFrom time.Time `json:"gap_from"`
	GapTo   time.Time `json:"gap_to"`
	// GapErrors are the errors the writer got inside that stretch, most
	// frequent first: why writes stopped, as a client saw it.
	GapErrors []ErrCount `json:"gap_errors,omitempty"`
	// PromotedAt is when the round's promotion ended (the promote step of
	// its successful failover record), zero without one. When it falls in
	// the gap, the gap splits into UntilPromoted (detection, decision,
	// fence, promotion) and AfterPromoted (the writer finding the new
	// master, and any wait of the new master's commits, e.g. for a
	// semi-sync ACK).
	PromotedAt    time.Time     `json:"promoted_at,omitempty"`
	UntilPromoted time.Duration `json:"until_promoted_ns,omitempty"`
	AfterPromoted time.Duration `json:"after_promoted_ns,omitempty"`
	// SemiSync is the round's master's semi-sync state after the round
	// and whether its commits fell back to async during it (waited
	// rpl_semi_sync_master_timeout for an ACK no replica sent).
	SemiSync         string `json:"semi_sync,omitempty"`
	SemiSyncFellBack bool   `json:"semi_sync_fell_back,omitempty"`
	// MidFailover says, for a kill of the leader in the middle of a
	// failover, whether the record was open at the kill and in which
	// step, and who finished it.
	MidFailover string   `json:"mid_failover,omitempty"`
	Rebuilt     []string `json:"rebuilt,omitempty"`
	Violations  []string `json:"violations,omitempty"`
	// Notes are what the runner saw that breaks no claim.
	Notes []string `json:"notes,omitempty"`
}

// Report is the whole run.
type Report struct {
	Seed      uint64             `json:"seed"`
	Rounds    []RoundResult      `json:"rounds"`
	Events    []Event            `json:"events"`
	Writers   map[string][]Write `json:"writers"`
	Acked     int                `json:"acked_group_writes"`
	ZoneAcked int                `json:"acked_in_zone_writes"`
	// ZoneLostAfterFault are in-zone writes acknowledged by the old
	// master after a round's fault and missing on the final master
	// (reported, not counted in Lost: see the runner's zoneAfter).
	ZoneLostAfterFault int           `json:"in_zone_lost_after_fault"`
	Lost               int           `json:"lost"`
	DoubleWritable     int           `json:"double_writable_samples"`
	Samples            int           `json:"samples"`
	Violations         []string      `json:"violations,omitempty"`
	Took               time.Duration `json:"took_ns"`
	// Replay is the command that replays the run ("" means make chaos
	// SEED=n ROUNDS=n).
	Replay string `json:"replay,omitempty"`
}

// MaxGap is the longest stretch in [from, to] without an acknowledged
// write: from the start of the window to the first ack, between acks, and
// from the last ack to the end.
func MaxGap(ws []Write, from, to time.Time) time.Duration {
	d, _, _ := MaxGapAt(ws, from, to)
	return d
}

// MaxGapAt is MaxGap with the stretch's bounds.
func MaxGapAt(ws []Write, from, to time.Time) (d time.Duration, gapFrom, gapTo time.Time) {
	last := from
	gapFrom, gapTo = from, from
	for _, w := range ws {
		if !w.OK || w.At.Before(from) || w.At.After(to) {
			continue
		}
		if g := w.At.Sub(last); g > d {
			d, gapFrom, gapTo = g, last, w.At
		}
		last = w.At
	}
	if g := to.Sub(last); g > d {
		d, gapFrom, gapTo = g, last, to
	}
	return d, gapFrom, gapTo
}

// gapErrorsNote says what the group-side writer was told during a round's
// longest gap when the gap is long enough to ask why (a second and more).
func gapErrorsNote(rr RoundResult) string {
	if rr.Unavailable < time.Second || len(rr.GapErrors) == 0 {
		return ""
	}
	var parts []string
	for i, e := range rr.GapErrors {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("%d more", len(rr.GapErrors)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%d× %q", e.Count, e.Err))
	}
	return fmt.Sprintf("the group-side writer's %s gap (%s to %s): %s", rr.Unavailable.Round(time.Millisecond),
		rr.GapFrom.Format("15:04:05.000"), rr.GapTo.Format("15:04:05.000"), strings.Join(parts, ", "))
}

// ErrCount is one error text and how many writes got it.
type ErrCount struct {
	Err   string `json:"err"`
	Count int    `json:"count"`
}

// ErrorsBetween counts the failed writes' errors in [from, to], most
// frequent first (ties by text, so the report is stable).
func ErrorsBetween(ws []Write, from, to time.Time) []ErrCount {
	n := map[string]int{}
	for _, w := range ws {
		if w.OK || w.At.Before(from) || w.At.After(to) {
			continue
		}
		n[w.Err]++
	}
	out := make([]ErrCount, 0, len(n))
	for e, c := range n {
		out = append(out, ErrCount{Err: e, Count: c})
	}
	slices.SortFunc(out, func(a, b ErrCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Err, b.Err)
	})
	return out
}

// Split divides the round's gap at the promotion, when the promotion
// ended inside it.
func (rr *RoundResult) Split() {
	rr.UntilPromoted, rr.AfterPromoted = 0, 0
	if rr.PromotedAt.IsZero() || rr.PromotedAt.Before(rr.GapFrom) || rr.PromotedAt.After(rr.GapTo) {
		return
	}
	rr.UntilPromoted = rr.PromotedAt.Sub(rr.GapFrom)
	rr.AfterPromoted = rr.GapTo.Sub(rr.PromotedAt)
}

// Write writes summary.md, report.json and timeline.svg into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("chaos report: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("chaos report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644); err != nil {
		return fmt.Errorf("chaos report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("chaos report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "timeline.svg"), []byte(r.SVG()), 0o644); err != nil {
		return fmt.Errorf("chaos report: %w", err)
	}
	return nil
}

// Markdown is the summary.
func (r *Report) Markdown() string {
	var b strings.Builder
	replay := r.Replay
	if replay == "" {
		replay = fmt.Sprintf("make chaos SEED=%d ROUNDS=%d", r.Seed, len(r.Rounds))
	}
	fmt.Fprintf(&b, "# quorumha chaos run\n\nseed %d, %d rounds, %s. Replay: `%s`\n\n",
		r.Seed, len(r.Rounds), r.Took.Round(time.Second), replay)
	fmt.Fprintf(&b, "| acknowledged group-side writes | acknowledged in-zone writes | lost | in-zone acknowledged after a fault, lost | double-writable findings | read_only samples | violations |\n|---|---|---|---|---|---|---|\n| %d | %d | %d | %d | %d | %d | %d |\n\n",
		r.Acked, r.ZoneAcked, r.Lost, r.ZoneLostAfterFault, r.DoubleWritable, r.Samples, len(r.Violations))
	b.WriteString("## Rounds\n\n\"Until / after promoted\" split a round's longest write gap at the end of its promotion: detection, decision, fence and promotion, then the writer finding the new master and that master's first commits (a semi-sync wait shows here).\n\n")
	b.WriteString("| # | faults | expected promotions | records | promotions | old → new master | unavailable | until / after promoted | semi-sync fell back | rebuilt | violations |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, rr := range r.Rounds {
		split := "–"
		if rr.UntilPromoted > 0 || rr.AfterPromoted > 0 {
			split = rr.UntilPromoted.Round(time.Millisecond).String() + " / " + rr.AfterPromoted.Round(time.Millisecond).String()
		}
		fell := ""
		if rr.SemiSyncFellBack {
			fell = "yes"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %v | %d | %s → %s | %s | %s | %s | %s | %d |\n", rr.N, rr.Faults, rr.Expect, rr.Records,
			rr.Promotions, rr.OldMaster, rr.NewMaster, rr.Unavailable.Round(time.Millisecond), split, fell, strings.Join(rr.Rebuilt, " "), len(rr.Violations))
	}
	b.WriteString("\n## Faults by kind\n\nThe faults of a two-fault round share its figure.\n\n| kind | rounds | unavailability median | max | rounds whose new master's semi-sync fell back |\n|---|---|---|---|---|\n")
	byKind := map[Kind][]time.Duration{}
	fell := map[Kind]int{}
	var kinds []Kind
	for _, rr := range r.Rounds {
		for _, k := range rr.Faults {
			if _, ok := byKind[k]; !ok {
				kinds = append(kinds, k)
			}
			byKind[k] = append(byKind[k], rr.Unavailable)
			if rr.SemiSyncFellBack {
				fell[k]++
			}
		}
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		d := byKind[k]
		slices.Sort(d)
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d |\n", k, len(d), d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), fell[k])
	}
	var notes []string
	for _, rr := range r.Rounds {
		if rr.MidFailover != "" {
			notes = append(notes, fmt.Sprintf("round %d (leader killed mid-failover): %s", rr.N, rr.MidFailover))
		}
		if rr.SemiSyncFellBack {
			notes = append(notes, fmt.Sprintf("round %d: %s", rr.N, rr.SemiSync))
		}
		for _, n := range rr.Notes {
			notes = append(notes, fmt.Sprintf("round %d: %s", rr.N, n))
		}
		if g := gapErrorsNote(rr); g != "" {
			notes = append(notes, fmt.Sprintf("round %d: %s", rr.N, g))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if len(r.Violations) > 0 {
		b.WriteString("\n## Violations\n\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "- %s\n", v)
		}
	}
	b.WriteString("\nTimeline: timeline.svg; raw data: report.json.\n")
	return b.String()
}

// SVG is the timeline: one lane of faults, one of the records' steps, and
// one per writer with its acknowledged (green) and failed (red) writes,
// bucketed per pixel column.
func (r *Report) SVG() string {
	var t0, t1 time.Time
	see := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if t0.IsZero() || t.Before(t0) {
			t0 = t
		}
		if t.After(t1) {
			t1 = t
		}
	}
	for _, e := range r.Events {
		see(e.At)
	}
	for _, rr := range r.Rounds {
		see(rr.Start)
		see(rr.End)
	}
	if !t1.After(t0) {
		t1 = t0.Add(time.Second)
	}
	const left, width, lane = 140, 1600, 34
	writers := make([]string, 0, len(r.Writers))
	for w := range r.Writers {
		writers = append(writers, w)
	}
	slices.Sort(writers)
	height := 60 + lane*(3+len(writers))
	x := func(t time.Time) float64 {
		return left + float64(width)*float64(t.Sub(t0))/float64(t1.Sub(t0))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="monospace" font-size="10">`+"\n", left+width+20, height)
	fmt.Fprintf(&b, `<text x="4" y="14" font-size="12">quorumha chaos seed %d: %s .. %s UTC</text>`+"\n", r.Seed, t0.UTC().Format("15:04:05"), t1.UTC().Format("15:04:05"))
	laneY := func(i int) int { return 30 + i*lane }
	labels := append([]string{"rounds / faults", "failover records"}, writers...)
	for i, l := range labels {
		fmt.Fprintf(&b, `<text x="4" y="%d">%s</text><line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#ddd"/>`+"\n",
			laneY(i)+lane/2, html.EscapeString(l), left, left+width, laneY(i)+lane, laneY(i)+lane)
	}
	for _, rr := range r.Rounds {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="24" y2="%d" stroke="#999" stroke-dasharray="2,3"/><text x="%.1f" y="%d">r%d</text>`+"\n",
			x(rr.Start), x(rr.Start), height-10, x(rr.Start)+2, laneY(0)+8, rr.N)
		if !rr.FaultAt.IsZero() && !rr.HealAt.IsZero() {
			color := "#f0a030"
			if len(rr.Violations) > 0 {
				color = "#d02020"
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="12" fill="%s"><title>%s</title></rect><text x="%.1f" y="%d">%s</text>`+"\n",
				x(rr.FaultAt), laneY(0)+12, max(1, x(rr.HealAt)-x(rr.FaultAt)), color, html.EscapeString(rr.Faults.String()),
				x(rr.FaultAt), laneY(0)+32, html.EscapeString(rr.Faults.String()))
		}
	}
	colors := map[string]string{"opened": "#3060d0", "fence": "#8030c0", "promote": "#20a040", "closed": "#000"}
	for _, e := range r.Events {
		c, ok := colors[e.Kind]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s" stroke-width="2"><title>%s %s %s</title></line>`+"\n",
			x(e.At), x(e.At), laneY(1)+4, laneY(1)+lane-4, c, e.At.UTC().Format("15:04:05.000"), e.Kind, html.EscapeString(e.Label))
	}
	for wi, name := range writers {
		ok := make([]int, width+1)
		bad := make([]int, width+1)
		for _, w := range r.Writers[name] {
			px := int(x(w.At)) - left
			if px < 0 || px > width {
				continue
			}
			if w.OK {
				ok[px]++
			} else {
				bad[px]++
			}
		}
		y := laneY(2 + wi)
		for px := 0; px <= width; px++ {
			if ok[px] > 0 {
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="1" height="%d" fill="#20a040"/>`, left+px, y+4, lane/2-4)
			}
			if bad[px] > 0 {
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="1" height="%d" fill="#d02020"/>`, left+px, y+lane/2, lane/2-4)
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, `<text x="4" y="%d">green: acknowledged writes; red: failed writes; blue: record opened, purple: fence proven, green: promoted, black: closed</text>`+"\n", height-2)
	b.WriteString("</svg>\n")
	return b.String()
}
