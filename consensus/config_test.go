package consensus

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestNew_InvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no ID", Config{InMemory: true, RaftAddr: "x"}, "ID"},
		{"no address", Config{ID: "a", InMemory: true}, "RaftAddr"},
		{"no data dir", Config{ID: "a", RaftAddr: "x"}, "DataDir"},
		{"bootstrap without self", Config{ID: "a", RaftAddr: "x", InMemory: true, Bootstrap: []Peer{{ID: "b", RaftAddr: "y"}}}, "include"},
		{"bootstrap duplicate", Config{ID: "a", RaftAddr: "x", InMemory: true, Bootstrap: []Peer{{ID: "a", RaftAddr: "x"}, {ID: "a", RaftAddr: "y"}}}, "twice"},
		{"bootstrap empty addr", Config{ID: "a", RaftAddr: "x", InMemory: true, Bootstrap: []Peer{{ID: "a"}}}, "empty"},
		{"lease above heartbeat", Config{ID: "a", RaftAddr: "x", InMemory: true, Timings: Timings{HeartbeatTimeout: time.Second, LeaderLeaseTimeout: 2 * time.Second, ElectionTimeout: time.Second}}, "LeaderLeaseTimeout"},
		{"election below heartbeat", Config{ID: "a", RaftAddr: "x", InMemory: true, Timings: Timings{HeartbeatTimeout: time.Second, ElectionTimeout: 600 * time.Millisecond}}, "ElectionTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, &testFSM{})
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want ErrInvalidConfig naming %q", err, tt.want)
			}
		})
	}
}

func TestTimings_PresetsAndDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Timings
		want Timings
	}{
		{"zero is LAN", Timings{}, LANTimings()},
		{"LAN stays", LANTimings(), LANTimings()},
		{"WAN stays", WANTimings(), WANTimings()},
		{"partial fills", Timings{ApplyTimeout: time.Minute}, func() Timings { l := LANTimings(); l.ApplyTimeout = time.Minute; return l }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.withDefaults()
			if got != tt.want {
				t.Fatalf("withDefaults = %+v, want %+v", got, tt.want)
			}
			cfg := Config{ID: "a", RaftAddr: "x", InMemory: true, Timings: got}
			if err := cfg.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
		})
	}
}

func TestHCLogAdapter_LevelsAndAttributes(t *testing.T) {
	tests := []struct {
		name     string
		level    hclog.Level
		wantLine string // "" = dropped
	}{
		{"trace dropped", hclog.Trace, ""},
		{"debug dropped", hclog.Debug, ""},
		{"info kept", hclog.Info, "level=INFO"},
		{"warn kept", hclog.Warn, "level=WARN"},
		{"error kept", hclog.Error, "level=ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
			a := newHCLogAdapter(l.With("component", "raft"), "raft").Named("transport").With("peer", "p1")
			a.Log(tt.level, "hello", "k", "v", "f", hclog.Fmt("%d-%s", 7, "x"))
			out := buf.String()
			if tt.wantLine == "" {
				if out != "" {
					t.Fatalf("got %q, want nothing", out)
				}
				return
			}
			for _, want := range []string{tt.wantLine, "msg=hello", "component=raft", "subsystem=raft.transport", "peer=p1", "k=v", "f=7-x"} {
				if !strings.Contains(out, want) {
					t.Fatalf("got %q, want it to contain %q", out, want)
				}
			}
		})
	}
}
