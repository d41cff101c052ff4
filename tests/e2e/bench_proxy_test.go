package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestBenchProxy runs, on fresh sandboxes, a kill -9 failover then a
// switchover with an application writing every 20 ms through a real
// HAProxy configured by `quorumha proxy-config haproxy` (checks every
// 500ms, fall 2, rise 1), and prints the write gap the application sees
// (last ack on the old master -> first ack on the new, through the proxy)
// and the acknowledged writes lost.
func TestBenchProxy(t *testing.T) {
	skipUnlessBench(t)
	haproxyBinary(t)
	var fos, sws []time.Duration
	lost := 0
	for i := 0; i < benchRuns(); i++ {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r := startProxyRun(ctx, t)
			nm, fo := r.failover(ctx, t)
			other, sw := r.switchover(ctx, t, nm)
			l, wrong := r.lostOn(ctx, t, other)
			if len(wrong) > 0 {
				t.Fatalf("writes acknowledged by another server than holds them: %v", wrong)
			}
			fos, sws, lost = append(fos, fo), append(sws, sw), lost+len(l)
		})
	}
	fmt.Println(summarize("proxy: kill -9 master -> writes through HAProxy resume (last ack old -> first ack new, 20 ms writer)", fos))
	fmt.Println(summarize("proxy: switchover -> writes through HAProxy resume (last ack old -> first ack new)", sws))
	fmt.Printf("BENCH proxy: acknowledged writes lost over %d runs: %d\n", len(fos), lost)
}
