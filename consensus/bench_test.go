package consensus

import (
	"context"
	"testing"
)

func BenchmarkApply(b *testing.B) {
	c := makeCluster(b, 3, nil)
	l := c.Leader()
	cmd := []byte("bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.node.Apply(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
}
