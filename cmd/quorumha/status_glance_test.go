package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/detector"
)

var glanceT0 = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

// glanceServers starts c1 (asked, follower), c2 (leader) and names c3 at a
// closed port; c4 is only a gossip member.
func glanceServers(t *testing.T) (asked string) {
	t.Helper()
	return glanceServersWith(t, "")
}

// glanceServersWith is glanceServers with c4, a gossip member that is not
// in raft, advertising c4HTTP.
func glanceServersWith(t *testing.T, c4HTTP string) (asked string) {
	t.Helper()
	c2 := httptest.NewServer(&cannedAPI{answers: map[string]string{
		"GET /v1/status": `{"id":"c2","zone":"zone-b","raft_state":"Leader","term":7,"fsm_applied_index":42}`,
	}})
	t.Cleanup(c2.Close)
	dead := freeLoopback(t) // nothing listens there
	c2Addr := strings.TrimPrefix(c2.URL, "http://")
	status := fmt.Sprintf(`{"id":"c1","zone":"zone-a","http_addr":"ASKED","raft_addr":"10.0.1.10:7000","raft_state":"Follower","term":7,
		"last_contact":%q,"known_leader":true,"fsm_applied_index":41,
		"leader":{"id":"c2","raft_addr":"10.0.2.10:7000","suffrage":"voter","leader":true},
		"peers":[{"id":"c1","raft_addr":"10.0.1.10:7000","suffrage":"voter"},
		         {"id":"c2","raft_addr":"10.0.2.10:7000","suffrage":"voter","leader":true,"http_addr":%q,"zone":"zone-b"},
		         {"id":"c3","raft_addr":"10.0.3.10:7000","suffrage":"voter","http_addr":%q,"zone":"zone-c"}],
		"gossip_members":[{"name":"c1","zone":"zone-a","state":"alive"},{"name":"c2","zone":"zone-b","state":"alive"},
		                  {"name":"c4","zone":"zone-d","state":"alive","http_addr":%q}]}`,
		glanceT0.Add(-1500*time.Millisecond).Format(time.RFC3339Nano), c2Addr, dead, c4HTTP)
	clusters := `{"index":42,"clusters":[{"name":"app1","master":"db1:3306",
		"state":{"name":"app1","master":"db1:3306","last_failover":"2026-11-22T02:00:00Z","last_failover_id":30},
		"topology":{"configured_instances":[{"address":"db1:3306"},{"address":"db2:3306"},{"address":"db3:3306"},{"address":"db4:3306"}],
		  "assessment":{"cluster":"app1","master":"db1:3306","state":"suspect","reason":"1 of 3 fresh votes see db1:3306 down",
		    "votes":[{"controller":"c1","zone":"zone-a","instance":"db1:3306","state":"down","reason":"timeout"},
		             {"controller":"c2","zone":"zone-b","instance":"db1:3306","state":"up","reason":"ok"}],
		    "stale":[{"controller":"c3","zone":"zone-c","instance":"db1:3306","state":"up","reason":"ok"}],
		    "down_count":1,"needed":2,
		    "replica_view":[{"replica":"db2:3306","reachable":true,"master_host":"db1","master_port":3306,"io_running":"Yes","sql_running":true,"seconds_behind":3},
		                    {"replica":"db3:3306","reachable":true,"master_host":"db1","master_port":3306,"io_running":"Connecting","sql_running":false},
		                    {"replica":"db4:3306","reachable":false,"error":"connection refused"}]}}},
		{"name":"app2","topology":{"configured_instances":[{"address":"x1:3306"},{"address":"x2:3306"}]}}]}`
	var c1 *httptest.Server
	c1 = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/status":
			_, _ = w.Write([]byte(strings.ReplaceAll(status, "ASKED", strings.TrimPrefix(c1.URL, "http://"))))
		case "/v1/clusters":
			_, _ = w.Write([]byte(clusters))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(c1.Close)
	return c1.URL
}

func TestStatusGlance_Table(t *testing.T) {
	base := glanceServers(t)
	c := &apiClient{base: base, http: &http.Client{Timeout: 5 * time.Second}}
	g, _, _, err := gatherGlance(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	// Addresses of the test servers vary: blank the HTTP column.
	for i := range g.Group {
		if g.Group[i].HTTPAddr != "" {
			g.Group[i].HTTPAddr = "h" + g.Group[i].ID
		}
	}
	var out strings.Builder
	if err := renderGlance(&out, g, glanceT0); err != nil {
		t.Fatal(err)
	}
	want := `GROUP  term 7, leader c2 (asked c1)
  CONTROLLER        ZONE    RAFT      TERM  APPLIED  CONTACT             GOSSIP  HTTP
  c1                zone-a  Follower  7     41       1.5s ago            alive   hc1
  c2 *              zone-b  Leader    7     42       -                   alive   hc2
  c3                zone-c  ?         -     -        connection refused  -       hc3
  c4 (not in raft)  zone-d  ?         -     -        not asked           alive   -

CLUSTER app1  master db1:3306  SUSPECT  (failover 30 not acked)
  why: 1 of 3 fresh votes see db1:3306 down
  INSTANCE  ROLE         IO          SQL  LAG   REPLICATES FROM
  db1:3306  master       -           -    -     -
  db2:3306  replica      Yes         Yes  3s    db1:3306
  db3:3306  replica      Connecting  No   NULL  db1:3306
  db4:3306  unreachable  -           -    -     connection refused
  verdicts: c1@zone-a down (timeout), c2@zone-b up, c3 stale  (1 down, 2 needed)

CLUSTER app2  master -  NOT ASSESSED
  INSTANCE  ROLE     IO  SQL  LAG  REPLICATES FROM
  x1:3306   replica  ?   ?    ?    ?
  x2:3306   replica  ?   ?    ?    ?
`
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if len(line) > 100 {
			t.Errorf("line wider than 100 columns (%d): %s", len(line), line)
		}
	}
}

func TestStatusCmd_JSONKeepsStatusFields(t *testing.T) {
	base := glanceServers(t)
	out, err := runCmd(t, "status", "--addr", base, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID        string           `json:"id"`
		RaftState string           `json:"raft_state"`
		Group     []controllerView `json:"group"`
		Clusters  []clusterView    `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if got.ID != "c1" || got.RaftState != "Follower" || len(got.Group) != 4 || len(got.Clusters) != 2 {
		t.Fatalf("json = %+v", got)
	}
	if !got.Group[1].Reachable || got.Group[1].RaftState != "Leader" || got.Group[2].Reachable {
		t.Errorf("group = %+v", got.Group)
	}
}

func TestStatusCmd_SelfIsTheDetailView(t *testing.T) {
	base := glanceServers(t)
	out, err := runCmd(t, "status", "--addr", base, "--self")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "indexes:") || !strings.Contains(out, "GOSSIP MEMBER") {
		t.Errorf("--self output:\n%s", out)
	}
}

func TestStatusGlance_AwaitingFence(t *testing.T) {
	var c clusterView
	c.Name = "app1"
	c.Master = "db1:3306"
	c.AwaitingFence = &api.AwaitingFence{RecordID: 51, Reason: "db1:3306: sql: unreachable; agent: none configured", Since: glanceT0.Add(-90 * time.Second)}
	var out strings.Builder
	if err := renderClusterGlance(&out, c, glanceT0); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"AWAITING_FENCE failover 51 since " + formatTime(glanceT0.Add(-90*time.Second)) + " (1m30s): db1:3306: sql: unreachable; agent: none configured",
		"quorumha failover --cluster app1 --unfenced",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}

// Item 4 of the security review: a fake gossip member advertised an HTTP
// address and `quorumha status` sent it the operator's token. Only raft
// peers are asked.
func TestStatusGlance_NeverAsksGossipOnlyMembers(t *testing.T) {
	var got []string
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
	}))
	defer evil.Close()
	base := glanceServersWith(t, evil.URL)
	c := &apiClient{base: base, token: "operator-token", http: &http.Client{Timeout: 5 * time.Second}}
	g, _, _, err := gatherGlance(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("gossip-only member was sent %d requests (tokens %q)", len(got), got)
	}
	for _, cv := range g.Group {
		if cv.ID == "c4" && cv.HTTPAddr != "" {
			t.Fatalf("gossip-advertised address shown for c4: %q", cv.HTTPAddr)
		}
	}
}

// Item 9: no client of the CLI goes through HTTP_PROXY.
func TestClient_IgnoresProxy(t *testing.T) {
	o := &clientOptions{addr: "http://127.0.0.1:1", timeout: time.Second}
	c, err := o.client()
	if err != nil {
		t.Fatal(err)
	}
	if tr, ok := c.http.Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Fatalf("CLI client honours HTTP_PROXY")
	}
	// The forwarding client's twin test is in controller (security_test.go).
}

func TestReplicaSignals(t *testing.T) {
	at := time.Date(2026, 11, 23, 2, 0, 10, 0, time.UTC)
	n := uint64(57)
	tests := []struct {
		name string
		o    detector.ReplicaObservation
		want string
	}{
		{"nothing beyond the IO thread", detector.ReplicaObservation{Replica: "db2:3306", Reachable: true, IORunning: "Yes"}, ""},
		{"heartbeats stalled, agent cannot reach",
			detector.ReplicaObservation{Replica: "db2:3306", Reachable: true, IORunning: "Yes", Heartbeats: &n,
				HeartbeatPeriod: time.Second, ProgressAt: at.Add(-3 * time.Second),
				Reach: &detector.AgentReach{Answered: true, Stage: "connect", Error: "dial tcp 10.0.0.1:3306: i/o timeout"}},
			"57 heartbeats every 1s, last progress 3s before (stalled); agent cannot reach it (connect: i/o timeout)"},
		{"agent silent", detector.ReplicaObservation{Replica: "db2:3306", Reach: &detector.AgentReach{Error: "refused"}}, "agent did not answer"},
		{"agent reaches", detector.ReplicaObservation{Replica: "db2:3306", Reach: &detector.AgentReach{Answered: true, Reachable: true, ElapsedMillis: 2}}, "agent reaches it (2ms)"},
	}
	for _, tt := range tests {
		if got := replicaSignals(tt.o, at); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
