package topology

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// GTIDInterval is an inclusive range of MySQL GTID transaction numbers.
type GTIDInterval struct {
	Start, End uint64
}

// gtidKey identifies one GTID stream: a server UUID and, on MySQL 8.3+, an
// optional tag ("uuid:tag:1-5"). Both are stored lowercase.
type gtidKey struct {
	UUID, Tag string
}

// GTIDSet is a MySQL GTID set (gtid_executed, Retrieved_Gtid_Set). The zero
// value is the empty set. A GTIDSet is immutable: every operation returns a
// new set, so values can be shared between goroutines.
type GTIDSet struct {
	m map[gtidKey][]GTIDInterval
}

// ParseGTIDSet parses a MySQL GTID set such as "uuid:1-5:7-9,uuid2:1-3", as
// printed by the server (with newlines after commas), case-insensitively, with
// 8.4 tags ("uuid:1-5:mytag:1-3"). The result is normalised: intervals sorted
// and merged.
func ParseGTIDSet(s string) (GTIDSet, error) {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	set := GTIDSet{m: map[gtidKey][]GTIDInterval{}}
	if clean == "" {
		return set, nil
	}
	for _, elem := range strings.Split(clean, ",") {
		if elem == "" {
			continue // MySQL tolerates an empty element (trailing comma)
		}
		items := strings.Split(elem, ":")
		uuid, err := normalizeUUID(items[0])
		if err != nil {
			return GTIDSet{}, fmt.Errorf("%w: %q: %w", ErrBadGTID, elem, err)
		}
		if len(items) < 2 {
			return GTIDSet{}, fmt.Errorf("%w: %q: no intervals", ErrBadGTID, elem)
		}
		key := gtidKey{UUID: uuid}
		pending := false // a tag seen without intervals yet
		for _, item := range items[1:] {
			if item == "" {
				return GTIDSet{}, fmt.Errorf("%w: %q: empty interval", ErrBadGTID, elem)
			}
			if isTagStart(item[0]) {
				if pending {
					return GTIDSet{}, fmt.Errorf("%w: %q: tag without intervals", ErrBadGTID, elem)
				}
				tag, err := normalizeTag(item)
				if err != nil {
					return GTIDSet{}, fmt.Errorf("%w: %q: %w", ErrBadGTID, elem, err)
				}
				key = gtidKey{UUID: uuid, Tag: tag}
				pending = true
				continue
			}
			iv, err := parseInterval(item)
			if err != nil {
				return GTIDSet{}, fmt.Errorf("%w: %q: %w", ErrBadGTID, elem, err)
			}
			set.m[key] = append(set.m[key], iv)
			pending = false
		}
		if pending {
			return GTIDSet{}, fmt.Errorf("%w: %q: tag without intervals", ErrBadGTID, elem)
		}
	}
	for k, ivs := range set.m {
		set.m[k] = mergeIntervals(ivs)
	}
	return set, nil
}

// MustParseGTIDSet is ParseGTIDSet for constants in tests and examples; it
// panics on a malformed set.
func MustParseGTIDSet(s string) GTIDSet {
	set, err := ParseGTIDSet(s)
	if err != nil {
		panic(err)
	}
	return set
}

func normalizeUUID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("bad uuid %q", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return "", fmt.Errorf("bad uuid %q", s)
			}
			continue
		}
		if !isHex(c) {
			return "", fmt.Errorf("bad uuid %q", s)
		}
	}
	return strings.ToLower(s), nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isTagStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// normalizeTag checks a MySQL 8.3+ GTID tag: up to 32 characters of letters,
// digits and underscores, not starting with a digit; tags compare
// case-insensitively.
func normalizeTag(s string) (string, error) {
	if len(s) > 32 {
		return "", fmt.Errorf("tag %q longer than 32", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isTagStart(c) && (c < '0' || c > '9') {
			return "", fmt.Errorf("bad tag %q", s)
		}
	}
	return strings.ToLower(s), nil
}

func parseInterval(s string) (GTIDInterval, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 64)
	if err != nil || a == 0 {
		return GTIDInterval{}, fmt.Errorf("bad interval %q", s)
	}
	b := a
	if isRange {
		b, err = strconv.ParseUint(hi, 10, 64)
		if err != nil || b < a {
			return GTIDInterval{}, fmt.Errorf("bad interval %q", s)
		}
	}
	return GTIDInterval{Start: a, End: b}, nil
}

// mergeIntervals sorts and coalesces overlapping or adjacent intervals.
func mergeIntervals(ivs []GTIDInterval) []GTIDInterval {
	if len(ivs) == 0 {
		return nil
	}
	s := slices.Clone(ivs)
	slices.SortFunc(s, func(a, b GTIDInterval) int {
		if a.Start != b.Start {
			return cmpUint(a.Start, b.Start)
		}
		return cmpUint(a.End, b.End)
	})
	out := []GTIDInterval{s[0]}
	for _, iv := range s[1:] {
		last := &out[len(out)-1]
		if iv.Start <= last.End+1 {
			last.End = max(last.End, iv.End)
			continue
		}
		out = append(out, iv)
	}
	return out
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// subtractIntervals returns a minus b; both must be normalised.
func subtractIntervals(a, b []GTIDInterval) []GTIDInterval {
	var out []GTIDInterval
	j := 0
	for _, iv := range a {
		cur := iv
		for j < len(b) && b[j].End < cur.Start {
			j++
		}
		k := j
		empty := false
		for k < len(b) && b[k].Start <= cur.End {
			if b[k].Start > cur.Start {
				out = append(out, GTIDInterval{Start: cur.Start, End: b[k].Start - 1})
			}
			if b[k].End >= cur.End {
				empty = true
				break
			}
			cur.Start = b[k].End + 1
			k++
		}
		if !empty {
			out = append(out, cur)
		}
	}
	return out
}

// IsEmpty reports whether the set holds no transaction.
func (s GTIDSet) IsEmpty() bool { return len(s.m) == 0 }

// Count returns how many transactions the set holds, e.g. to express lag.
func (s GTIDSet) Count() uint64 {
	var n uint64
	for _, ivs := range s.m {
		for _, iv := range ivs {
			n += iv.End - iv.Start + 1
		}
	}
	return n
}

// Union returns every transaction in s or o.
func (s GTIDSet) Union(o GTIDSet) GTIDSet {
	out := GTIDSet{m: make(map[gtidKey][]GTIDInterval, len(s.m)+len(o.m))}
	for k, ivs := range s.m {
		out.m[k] = slices.Clone(ivs)
	}
	for k, ivs := range o.m {
		out.m[k] = mergeIntervals(append(out.m[k], ivs...))
	}
	return out
}

// Subtract returns the transactions in s that are not in o: applied to a
// replica's and its master's gtid_executed, these are errant transactions.
func (s GTIDSet) Subtract(o GTIDSet) GTIDSet {
	out := GTIDSet{m: map[gtidKey][]GTIDInterval{}}
	for k, ivs := range s.m {
		if rest := subtractIntervals(ivs, o.m[k]); len(rest) > 0 {
			out.m[k] = rest
		}
	}
	return out
}

// Contains reports whether every transaction of o is in s (o ⊆ s).
func (s GTIDSet) Contains(o GTIDSet) bool { return o.Subtract(s).IsEmpty() }

// Equal reports whether s and o hold the same transactions.
func (s GTIDSet) Equal(o GTIDSet) bool { return s.String() == o.String() }

// String returns the canonical form: UUIDs sorted and lowercase, untagged
// intervals before tagged ones, tags sorted, elements joined by ",".
func (s GTIDSet) String() string {
	keys := make([]gtidKey, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b gtidKey) int {
		if c := strings.Compare(a.UUID, b.UUID); c != 0 {
			return c
		}
		return strings.Compare(a.Tag, b.Tag)
	})
	var b strings.Builder
	prevUUID := ""
	for _, k := range keys {
		if k.UUID != prevUUID {
			if prevUUID != "" {
				b.WriteByte(',')
			}
			b.WriteString(k.UUID)
			prevUUID = k.UUID
		}
		if k.Tag != "" {
			b.WriteByte(':')
			b.WriteString(k.Tag)
		}
		for _, iv := range s.m[k] {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(iv.Start, 10))
			if iv.End != iv.Start {
				b.WriteByte('-')
				b.WriteString(strconv.FormatUint(iv.End, 10))
			}
		}
	}
	return b.String()
}

// UUIDs lists the server UUIDs (sources) present in the set, sorted.
func (s GTIDSet) UUIDs() []string {
	seen := map[string]bool{}
	var out []string
	for k := range s.m {
		if !seen[k.UUID] {
			seen[k.UUID] = true
			out = append(out, k.UUID)
		}
	}
	slices.Sort(out)
	return out
}
