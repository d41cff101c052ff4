package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumha/quorumha/api"
	"github.com/quorumha/quorumha/fsm"
	"github.com/quorumha/quorumha/topology"
)

// Discovery (leader only): replicas of a watched master that are not
// instances of its cluster are reported, and with clusters[].auto_add
// added through raft as no_master instances until an operator changes
// them. Discovery logs in only to the master (a configured instance) and
// the configured replicas; an unknown address is logged in to only when
// auto_add allows it, to prove it replicates from this master before it
// is added.

// Discovery sources.
const (
	sourceSlaveHosts = "slave_hosts"
	sourceDumpThread = "dump_thread"
)

// discoveredReports is the leader's latest discovery report per cluster,
// for the API's cluster view and the metric.
type discoveredReports struct {
	mu     sync.Mutex
	by     map[string][]api.DiscoveredInstance
	metric *prometheus.GaugeVec
}

func newDiscoveredMetric(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "quorumha_discovered_instances",
		Help: "Replicas of a cluster's master that are not instances of the cluster (leader only)."}, []string{"cluster"})
	if reg != nil {
		if err := reg.Register(g); err != nil {
			return nil
		}
	}
	return g
}

func (d *discoveredReports) set(cluster string, v []api.DiscoveredInstance) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.by == nil {
		d.by = map[string][]api.DiscoveredInstance{}
	}
	if len(v) == 0 {
		delete(d.by, cluster)
	} else {
		d.by[cluster] = v
	}
	if d.metric != nil {
		d.metric.WithLabelValues(cluster).Set(float64(len(v)))
	}
}

func (d *discoveredReports) get(cluster string) []api.DiscoveredInstance {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.by[cluster])
}

// reset forgets every report (leadership lost: the next leader reports).
func (d *discoveredReports) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.by = nil
	if d.metric != nil {
		d.metric.Reset()
	}
}

// unknownReplicas returns the replicas a master reports that are not
// instances of the cluster. A host registered in SHOW SLAVE HOSTS under
// another name but with the server_id of a configured instance is known.
// A dump thread's guessed address (client IP, master's port) is dropped
// when a configured replica on that host did not register itself (it is
// most likely that one). Pure, table-tested.
func unknownReplicas(hosts []topology.ReplicaHost, master string, configured []string, knownIDs map[uint32]bool) []api.DiscoveredInstance {
	isConfigured := func(a string) bool {
		return slices.ContainsFunc(configured, func(c string) bool { return strings.EqualFold(c, a) })
	}
	registered := map[string]bool{}
	for _, h := range hosts {
		if !h.Guessed {
			registered[strings.ToLower(h.Addr())] = true
		}
	}
	var out []api.DiscoveredInstance
	for _, h := range hosts {
		addr := h.Addr()
		if isConfigured(addr) || (h.ServerID != 0 && knownIDs[h.ServerID]) {
			continue
		}
		src := sourceSlaveHosts
		if h.Guessed {
			src = sourceDumpThread
			unregisteredHere := slices.ContainsFunc(configured, func(c string) bool {
				host, _, err := net.SplitHostPort(c)
				return err == nil && strings.EqualFold(host, h.Host) && !strings.EqualFold(c, master) && !registered[strings.ToLower(c)]
			})
			if unregisteredHere {
				continue
			}
		}
		out = append(out, api.DiscoveredInstance{Address: addr, Source: src, ServerID: h.ServerID, Action: "reported"})
	}
	slices.SortFunc(out, func(a, b api.DiscoveredInstance) int { return strings.Compare(a.Address, b.Address) })
	return out
}

// discoverEvery is the pause between discovery rounds. A new replica is
// not an emergency: every 5 s at least keeps a controller watching
// hundreds of clusters cheap (TestBenchScale).
func (c *Controller) discoverEvery() time.Duration {
	return max(10*c.cfg.Detector.ProbeInterval, 5*time.Second)
}

// discoverLoop runs discovery rounds until ctx ends (leadership lost).
func (c *Controller) discoverLoop(ctx context.Context, logger *slog.Logger) {
	defer c.discovered.reset()
	d := &discoverer{c: c, log: logger, ids: map[string]uint32{}, last: map[string]string{}, conns: map[string]*topology.Conn{}}
	defer d.closeAll()
	// The gauge starts at 0 for every cluster, so it is there to alert on
	// (and absent only on followers) before a master answers a round.
	for _, rc := range c.topo.current().clusters {
		c.discovered.set(rc.Name, nil)
	}
	for {
		for _, rc := range c.topo.current().clusters {
			if ctx.Err() != nil {
				return
			}
			d.round(ctx, rc)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.discoverEvery()):
		}
	}
}

// discoverer holds one leadership term's discovery memory.
type discoverer struct {
	c   *Controller
	log *slog.Logger
	ids map[string]uint32 // configured address -> server_id, once read
	// last is the reported set per cluster, so a change is logged once.
	last map[string]string
	// conns are the masters' connections, kept across rounds (a new
	// connection per master per round cost more than the probes).
	conns map[string]*topology.Conn
}

// masterConn returns the kept connection to a master, opening it when
// needed.
func (d *discoverer) masterConn(ctx context.Context, addr string, cred topology.Credentials) (*topology.Conn, error) {
	key := strings.ToLower(addr)
	if c, ok := d.conns[key]; ok {
		return c, nil
	}
	c, err := topology.Open(ctx, addr, cred, d.timeouts(), nil)
	if err != nil {
		return nil, err
	}
	d.conns[key] = c
	return c, nil
}

// dropConn closes and forgets a master's connection after an error.
func (d *discoverer) dropConn(addr string) {
	key := strings.ToLower(addr)
	if c, ok := d.conns[key]; ok {
		_ = c.Close()
		delete(d.conns, key)
	}
}

func (d *discoverer) closeAll() {
	for k, c := range d.conns {
		_ = c.Close()
		delete(d.conns, k)
	}
}

func (d *discoverer) timeouts() topology.Timeouts {
	t := d.c.cfg.Detector.ProbeTimeout
	return topology.Timeouts{Connect: t, Read: 2 * t, Write: 2 * t}
}

// round discovers one cluster's unknown replicas, reports them, and adds
// them with auto_add.
func (d *discoverer) round(ctx context.Context, rc resolvedCluster) {
	if rc.TLSErr != nil {
		return
	}
	spec, ok := d.c.detect.det.Cluster(rc.Name)
	if !ok || spec.Master == "" {
		return
	}
	cred := topology.Credentials{User: rc.User, Password: rc.Password.Reveal(), TLS: rc.TLS}
	rctx, cancel := context.WithTimeout(ctx, 10*d.c.cfg.Detector.ProbeTimeout+5*time.Second)
	defer cancel()
	conn, err := d.masterConn(rctx, spec.Master, cred)
	if err != nil {
		return // the detector reports an unreachable master
	}
	hosts, herr := conn.ReplicaHosts(rctx)
	masterID, ierr := d.serverID(rctx, conn)
	if herr != nil || ierr != nil {
		d.dropConn(spec.Master)
		d.log.Debug("discovery: read master", "cluster", rc.Name, "master", spec.Master, "err", errors.Join(herr, ierr))
		return
	}
	configured := instanceAddrs(rc)
	known := map[uint32]bool{masterID: true}
	for _, a := range configured {
		if strings.EqualFold(a, spec.Master) {
			continue
		}
		id, ok := d.ids[strings.ToLower(a)]
		if !ok {
			id = d.readServerID(rctx, a, cred) // a configured instance: allowed
			if id != 0 {
				d.ids[strings.ToLower(a)] = id
			}
		}
		if id != 0 {
			known[id] = true
		}
	}
	found := unknownReplicas(hosts, spec.Master, configured, known)
	now := time.Now().UTC()
	for i := range found {
		found[i].Seen = now
		if rc.AutoAdd && rc.Origin == originState {
			found[i].Action = d.autoAdd(rctx, rc, found[i], masterID, cred)
		}
	}
	d.c.discovered.set(rc.Name, found)
	var key []string
	for _, f := range found {
		key = append(key, f.Address+"="+f.Action)
	}
	if k := strings.Join(key, ","); k != d.last[rc.Name] {
		d.last[rc.Name] = k
		for _, f := range found {
			d.log.Warn("replica of the master is not an instance of the cluster", "cluster", rc.Name, "master", spec.Master,
				"replica", f.Address, "source", f.Source, "server_id", f.ServerID, "action", f.Action, "auto_add", rc.AutoAdd)
		}
	}
}

// serverID is the master's server_id, read once per address and term.
func (d *discoverer) serverID(ctx context.Context, conn *topology.Conn) (uint32, error) {
	key := strings.ToLower(conn.Addr())
	if id, ok := d.ids[key]; ok {
		return id, nil
	}
	v, err := conn.GlobalVariable(ctx, "server_id")
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: server_id %q: %w", conn.Addr(), v, err)
	}
	d.ids[key] = uint32(id)
	return uint32(id), nil
}

func (d *discoverer) readServerID(ctx context.Context, addr string, cred topology.Credentials) uint32 {
	conn, err := topology.Open(ctx, addr, cred, d.timeouts(), nil)
	if err != nil {
		return 0
	}
	defer conn.Close()
	inst, err := conn.Read(ctx)
	if err != nil {
		return 0
	}
	return inst.ServerID
}

// autoAdd proves that the discovered address is a replica of this master
// (its replica status names the master's server_id, and its own server_id
// is the one it registered with) and adds it as a no_master instance. It
// returns the report's action.
func (d *discoverer) autoAdd(ctx context.Context, rc resolvedCluster, f api.DiscoveredInstance, masterID uint32, cred topology.Credentials) string {
	conn, err := topology.Open(ctx, f.Address, cred, d.timeouts(), nil)
	if err != nil {
		return "not added: " + err.Error()
	}
	inst, err := conn.Read(ctx)
	_ = conn.Close()
	switch {
	case err != nil:
		return "not added: " + err.Error()
	case inst.Replica == nil || inst.Replica.MasterServerID != masterID:
		return "not added: it does not replicate from the master"
	case f.ServerID != 0 && inst.ServerID != f.ServerID:
		return "not added: its server_id differs from the one it registered with"
	}
	by := "discovery:" + d.c.cfg.Node.ID
	buf, err := fsm.Encode(fsm.InstanceSetType, fsm.InstanceSet{Op: fsm.OpAdd, Cluster: rc.Name, Address: f.Address,
		Patch: fsm.InstancePatch{NoMaster: ptrTo(true)}, By: by, At: time.Now().UTC()})
	if err != nil {
		return "not added: " + err.Error()
	}
	if _, err := d.c.node.Apply(ctx, buf); err != nil {
		return "not added: " + err.Error()
	}
	d.log.Info("added a discovered replica as no_master (auto_add)", "cluster", rc.Name, "replica", f.Address)
	return "added"
}

func ptrTo[T any](v T) *T { return &v }
