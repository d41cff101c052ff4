package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPeersCmd_AgainstAPI(t *testing.T) {
	api := &cannedAPI{answers: map[string]string{
		"GET /v1/raft/peers": `{"leader_id":"c1","peers":[{"id":"c1","raft_addr":"10.0.1.10:7000","suffrage":"voter","leader":true,"http_addr":"10.0.1.10:8080","zone":"zone-a"},` +
			`{"id":"c2","raft_addr":"10.0.2.10:7000","suffrage":"voter","leader":false}]}`,
		"POST /v1/raft/join":       `{"id":"c4","raft_addr":"10.0.4.10:7000"}`,
		"DELETE /v1/raft/peers/c3": `{"removed":"c3"}`,
	}}
	ts := httptest.NewServer(api)
	defer ts.Close()
	tests := []struct {
		args      []string
		want      string
		wantReq   string
		wantBody  string
		wantToken bool
	}{
		{[]string{"peers", "list", "--addr", ts.URL}, "PEER  RAFT ADDRESS    HTTP ADDRESS    ZONE    SUFFRAGE  LEADER\n" +
			"c1    10.0.1.10:7000  10.0.1.10:8080  zone-a  voter     *\n" +
			"c2    10.0.2.10:7000  -               -       voter     \n", "GET /v1/raft/peers", "", false},
		{[]string{"peers", "add", "c4", "10.0.4.10:7000", "--addr", ts.URL, "--token", "t0k"}, "c4 (10.0.4.10:7000) is a voter\n",
			"POST /v1/raft/join", `{"id":"c4","raft_addr":"10.0.4.10:7000"}`, true},
		{[]string{"peers", "remove", "c3", "--addr", ts.URL, "--token", "t0k"}, "removed c3 from the raft group\n",
			"DELETE /v1/raft/peers/c3", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.args[1], func(t *testing.T) {
			out, err := runCmd(t, tt.args...)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if out != tt.want {
				t.Fatalf("output:\n%s\nwant:\n%s", out, tt.want)
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			last := len(api.seen) - 1
			if api.seen[last] != tt.wantReq || !strings.Contains(api.bodies[last], tt.wantBody) {
				t.Fatalf("request %s %q, want %s %q", api.seen[last], api.bodies[last], tt.wantReq, tt.wantBody)
			}
			if tt.wantToken && api.auth[last] != "Bearer t0k" {
				t.Fatalf("authorization %q", api.auth[last])
			}
		})
	}
	if _, err := runCmd(t, "peers", "remove", "nobody", "--addr", ts.URL); err == nil {
		t.Fatal("removing an unknown peer (404) succeeded")
	}
}
