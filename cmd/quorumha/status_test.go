package main

import (
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/consensus"
)

func TestRenderStatus_Table(t *testing.T) {
	peers := []api.PeerInfo{
		{Peer: consensus.Peer{ID: "c1", RaftAddr: "10.0.1.10:7000", Suffrage: "voter"}, HTTPAddr: "10.0.1.10:8080", Zone: "zone-a"},
		{Peer: consensus.Peer{ID: "c2", RaftAddr: "10.0.2.10:7000", Suffrage: "voter", Leader: true}, HTTPAddr: "10.0.2.10:8080", Zone: "zone-b"},
		{Peer: consensus.Peer{ID: "c3", RaftAddr: "10.0.3.10:7000", Suffrage: "voter"}},
	}
	tests := []struct {
		name string
		in   api.StatusResponse
		want string
	}{
		{"follower", api.StatusResponse{
			ID: "c1", Zone: "zone-a", HTTPAddr: "10.0.1.10:8080", RaftAddr: "10.0.1.10:7000", RaftState: "Follower",
			Term: 7, CommitIndex: 42, AppliedIndex: 42, LastIndex: 43, FSMAppliedIndex: 42, LastContact: renderT0.Add(-1500 * time.Millisecond),
			KnownLeader: true, Leader: peers[1], Peers: peers, LeaderChanges: 3, RecordCount: 5,
		}, `node:            c1 (zone-a)
http:            10.0.1.10:8080
raft:            10.0.1.10:7000
state:           Follower
term:            7
indexes:         commit 42  applied 42  last 43  fsm 42
last contact:    1.5s ago
leader:          c2  http 10.0.2.10:8080
leader changes:  3
records:         5

PEER  RAFT ADDRESS    HTTP ADDRESS    ZONE    SUFFRAGE  LEADER
c1    10.0.1.10:7000  10.0.1.10:8080  zone-a  voter     
c2    10.0.2.10:7000  10.0.2.10:8080  zone-b  voter     *
c3    10.0.3.10:7000  -               -       voter     
`},
		{"candidate without leader", api.StatusResponse{
			ID: "c3", RaftAddr: "10.0.3.10:7000", RaftState: "Candidate", Term: 8,
		}, `node:            c3
http:            -
raft:            10.0.3.10:7000
state:           Candidate
term:            8
indexes:         commit 0  applied 0  last 0  fsm 0
last contact:    -
leader:          none known
leader changes:  0
records:         0

PEER  RAFT ADDRESS  HTTP ADDRESS  ZONE  SUFFRAGE  LEADER
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sb strings.Builder
			if err := renderStatus(&sb, tt.in, renderT0); err != nil {
				t.Fatal(err)
			}
			if got := sb.String(); got != tt.want {
				t.Fatalf("got:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

func TestRenderLeader_Line(t *testing.T) {
	tests := []struct {
		name string
		in   api.LeaderResponse
		want string
	}{
		{"with http", api.LeaderResponse{ID: "c2", RaftAddr: "10.0.2.10:7000", HTTPAddr: "10.0.2.10:8080", Term: 7},
			"leader c2  raft 10.0.2.10:7000  http 10.0.2.10:8080  term 7\n"},
		{"http not recorded", api.LeaderResponse{ID: "c2", RaftAddr: "10.0.2.10:7000", Term: 7},
			"leader c2  raft 10.0.2.10:7000  http (not recorded yet)  term 7\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sb strings.Builder
			if err := renderLeader(&sb, tt.in); err != nil {
				t.Fatal(err)
			}
			if got := sb.String(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
