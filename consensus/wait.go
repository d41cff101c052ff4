package consensus

import (
	"bytes"
	"context"
	"runtime"
)

// recvCtx receives from ch unless ctx ends first. A value that is ready
// when ctx ends still counts: finished is finished (select alone picks
// at random between two ready cases).
func recvCtx[T any](ctx context.Context, ch <-chan T) (T, bool) {
	select {
	case v := <-ch:
		return v, true
	case <-ctx.Done():
		select {
		case v := <-ch:
			return v, true
		default:
			var zero T
			return zero, false
		}
	}
}

// waitCtx runs wait (a WaitGroup's Wait, say) and reports whether it
// returned before ctx ended. When it did not, the goroutine running wait
// stays until wait returns: Shutdown's callers get their answer on time,
// and what did not stop is reported, not waited for.
func waitCtx(ctx context.Context, wait func()) bool {
	done := make(chan struct{})
	go func() {
		wait()
		close(done)
	}()
	_, ok := recvCtx(ctx, done)
	return ok
}

// maxStacks bounds raftStacks' answer so one log line stays readable.
const maxStacks = 32 << 10

// raftStacks returns the stacks of this process's goroutines that are in
// hashicorp/raft, for the report of a shutdown that did not finish: what
// raft waits for is the bug to find.
func raftStacks() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out bytes.Buffer
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if !bytes.Contains(g, []byte("hashicorp/raft")) {
			continue
		}
		if out.Len()+len(g) > maxStacks {
			out.WriteString("...(more raft goroutines left out)\n")
			break
		}
		out.Write(g)
		out.WriteString("\n\n")
	}
	return out.String()
}
