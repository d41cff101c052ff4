package topology

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// DialFunc opens a Conn to an address; Discover takes one so callers choose
// credentials, timeouts, pooling and, in tests, fakes.
type DialFunc func(ctx context.Context, addr string) (*Conn, error)

// OnlyConfigured wraps dial so that it connects only to the configured
// addresses (compared case-insensitively) and refuses any other with
// ErrNotConfigured, without connecting. Discovery follows addresses the
// servers report (report_host in SHOW SLAVE HOSTS, a replica's
// Master_Host): whoever can set report_host on a replica could otherwise
// collect the admin account's password. Refused addresses show up in
// Topology.Unreachable with that error, so they are reported, never logged
// in to.
func OnlyConfigured(configured []string, dial DialFunc) DialFunc {
	set := make(map[string]bool, len(configured))
	for _, a := range configured {
		set[strings.ToLower(a)] = true
	}
	return func(ctx context.Context, addr string) (*Conn, error) {
		if !set[strings.ToLower(addr)] {
			return nil, fmt.Errorf("%s: %w: not connected with the cluster's credentials", addr, ErrNotConfigured)
		}
		return dial(ctx, addr)
	}
}

// maxDiscovered bounds a crawl, so a misconfigured report_host cannot make
// discovery wander a whole network.
const maxDiscovered = 64

// Discover reads the seeds and every instance reachable from them by
// following masters (Master_Host:Master_Port) and replicas (SHOW SLAVE HOSTS,
// binlog dump threads), then Analyzes the result. Instances are told apart by
// server_id, so one server reached under two addresses is read once and the
// second address becomes an alias. Failures are reported in Unreachable, not
// returned as errors; only an empty seed list or a cancelled ctx is an error.
// Conns opened here are closed before returning.
func Discover(ctx context.Context, seeds []string, dial DialFunc, logger *slog.Logger) (*Topology, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("%w: discover: no seeds", ErrBadOptions)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	type item struct {
		addr    string
		guessed bool
	}
	queue := make([]item, 0, len(seeds))
	for _, s := range seeds {
		queue = append(queue, item{addr: s})
	}
	visited := map[string]bool{}
	byServerID := map[uint32]*Instance{}
	aliases := map[string]string{}
	var instances []*Instance
	var unreachable []UnreachableInstance
	for len(queue) > 0 && len(visited) < maxDiscovered {
		it := queue[0]
		queue = queue[1:]
		if visited[it.addr] {
			continue
		}
		visited[it.addr] = true
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("discover: %w", err)
		}
		inst, hosts, err := readForDiscovery(ctx, it.addr, dial, logger)
		if err != nil {
			if it.guessed {
				logger.DebugContext(ctx, "guessed replica address not reachable", "addr", it.addr, "err", err)
				continue
			}
			unreachable = append(unreachable, UnreachableInstance{Addr: it.addr, Err: err})
			continue
		}
		if prev, ok := byServerID[inst.ServerID]; ok && inst.ServerID != 0 {
			aliases[it.addr] = prev.Key
			continue
		}
		byServerID[inst.ServerID] = inst
		instances = append(instances, inst)
		if mk := inst.MasterKey(); mk != "" {
			queue = append(queue, item{addr: mk})
		}
		for _, h := range hosts {
			queue = append(queue, item{addr: h.Addr(), guessed: h.Guessed})
		}
	}
	// An unreachable address that turned out to be an alias of a read instance
	// is not unreachable.
	kept := unreachable[:0]
	for _, u := range unreachable {
		if _, ok := aliases[u.Addr]; !ok {
			kept = append(kept, u)
		}
	}
	return Analyze(instances, aliases, kept), nil
}

// readForDiscovery reads one instance and the replicas it knows of. Failing
// to list replicas (e.g. a monitor account without REPLICATION SLAVE) loses
// only the walk down from this instance, not the instance itself.
func readForDiscovery(ctx context.Context, addr string, dial DialFunc, logger *slog.Logger) (*Instance, []ReplicaHost, error) {
	c, err := dial(ctx, addr)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = c.Close() }()
	inst, err := c.Read(ctx)
	if err != nil {
		return nil, nil, err
	}
	hosts, err := c.ReplicaHosts(ctx)
	if err != nil {
		logger.WarnContext(ctx, "cannot list replicas", "addr", addr, "err", err)
	}
	return inst, hosts, nil
}
