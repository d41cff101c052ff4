package detector

// A changed verdict (a master now Suspect or Down, or Up again) is also sent
// to every member at once, besides the broadcast queue that memberlist
// drains every gossip interval (200 ms on a LAN): the quorum, and the early
// probes of the controllers that still see the master up, should not wait
// for the next gossip round. The queued broadcast still goes out and heals
// a lost packet.

// ownStates returns this controller's last published state of each
// instance in vs (absent when none was published).
func (s *verdictStore) ownStates(vs []Verdict) map[string]State {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]State, len(vs))
	for _, v := range vs {
		if old, ok := s.verdicts[v.Instance][s.self]; ok {
			out[v.Instance] = old.State
		}
	}
	return out
}

// sendNow sends msg to every other member over UDP, best effort: a lost
// packet is healed by the queued broadcast and the push/pull exchange.
func (g *Gossip) sendNow(msg []byte) {
	ml := g.live.Load()
	if ml == nil {
		return
	}
	self := ml.LocalNode()
	for _, n := range ml.Members() {
		if n.Name == self.Name {
			continue
		}
		if err := ml.SendBestEffort(n, msg); err != nil {
			g.log.Debug("send changed verdict", "to", n.Name, "err", err)
		}
	}
}
