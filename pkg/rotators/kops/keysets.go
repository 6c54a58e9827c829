package kops

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"k8s.io/kops/pkg/pki"
	"k8s.io/kops/upup/pkg/fi"

	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// Stage of the rotation of one keyset, or of the whole procedure.
type Stage string

// Stages, in the order the procedure goes through them.
const (
	StageIdle       Stage = "idle"
	StageStaged     Stage = "staged"
	StagePromoted   Stage = "promoted"
	StageDistrusted Stage = "distrusted"
)

// Item is one keypair of a keyset, for status output.
type Item struct {
	ID string `json:"id"`
	// Created is when the keypair was made: the time its kOps id carries
	// when the id is a serial kOps built at issuance (within the
	// certificate's validity), else the certificate's NotBefore (an
	// imported or certificate-only item, whose id says nothing of time).
	Created    time.Time  `json:"created"`
	Distrusted *time.Time `json:"distrusted,omitempty"`
	// NotAfter is when the certificate expires, as `kops get keypairs`
	// shows it.
	NotAfter *time.Time `json:"notAfter,omitempty"`
	// Fingerprint is the SHA-256 of the certificate (DER, hex): public,
	// what a client's CA bundle can be checked against.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// KeysetStatus is where one keyset stands.
type KeysetStatus struct {
	Name    string `json:"name"`
	Primary Item   `json:"primary"`
	// Staged: trusted keypairs newer than the primary (candidates to promote).
	Staged []Item `json:"staged,omitempty"`
	// Previous: trusted keypairs older than the primary (to distrust).
	Previous []Item `json:"previous,omitempty"`
	// Distrusted keypairs.
	Distrusted []Item `json:"distrusted,omitempty"`
	// TrustOnly: trusted certificates without a private key (added with
	// `kops create keypair --cert`, or imported): never a primary, so
	// never staged, promoted or distrusted by the procedure.
	TrustOnly []Item `json:"trustOnly,omitempty"`
	Stage     Stage  `json:"stage"`
	// DistrustedByHand: Status shows the keyset idle although its last
	// step was a distrust, because no kops-rotate journal holds it (a
	// rotation by hand).
	DistrustedByHand bool `json:"distrustedByHand,omitempty"`
}

// itemCreated reads the creation time a kOps id carries: ids are
// certificate serials, unixnano<<32 | random.
func itemCreated(id string) time.Time {
	n, ok := new(big.Int).SetString(id, 10)
	if !ok {
		return time.Time{}
	}
	return time.Unix(0, new(big.Int).Rsh(n, 32).Int64()).UTC()
}

func item(i *fi.KeysetItem) Item {
	it := Item{ID: i.Id, Created: created(i), Distrusted: i.DistrustTimestamp}
	if c := certificate(i); c != nil {
		na := c.NotAfter.UTC()
		it.NotAfter = &na
		sum := sha256.Sum256(c.Raw)
		it.Fingerprint = hex.EncodeToString(sum[:])
	}
	return it
}

// created is when a keypair was made. kOps ids built at issuance
// (pki.BuildPKISerial) carry the time; an id that does not fall in the
// certificate's validity (a certificate-only item gets "0" or its serial,
// fi.Keyset.AddItem) says nothing, and the certificate's NotBefore is used.
func created(i *fi.KeysetItem) time.Time {
	t := itemCreated(i.Id)
	c := certificate(i)
	if c == nil || (!t.Before(c.NotBefore) && !t.After(c.NotAfter)) {
		return t
	}
	return c.NotBefore.UTC()
}

func certificate(i *fi.KeysetItem) *x509.Certificate {
	if i == nil || i.Certificate == nil {
		return nil
	}
	return i.Certificate.Certificate
}

// newer reports whether a is newer than b as kOps orders keypairs: by
// certificate serial (distrust keypair compares serials), else by id.
func newer(a, b *fi.KeysetItem) bool {
	if ca, cb := certificate(a), certificate(b); ca != nil && cb != nil && ca.SerialNumber != nil && cb.SerialNumber != nil {
		return ca.SerialNumber.Cmp(cb.SerialNumber) > 0
	}
	return fi.KeysetItemIdOlder(b.Id, a.Id)
}

// usable is what kOps requires of a primary: trusted, with key and certificate.
func usable(i *fi.KeysetItem) bool {
	return i != nil && i.DistrustTimestamp == nil && i.PrivateKey != nil && i.Certificate != nil
}

// status works out one keyset's stage from its items.
func status(name string, ks *fi.Keyset) (KeysetStatus, error) {
	if ks == nil || ks.Primary == nil {
		return KeysetStatus{}, fmt.Errorf("keyset %s has no primary keypair: it is corrupt or empty; check it with `kops get keypairs %s --distrusted`", name, name)
	}
	st := KeysetStatus{Name: name, Primary: item(ks.Primary)}
	for _, it := range sortedItems(ks) {
		if it == nil || it.Id == ks.Primary.Id {
			continue
		}
		switch {
		case it.DistrustTimestamp != nil:
			st.Distrusted = append(st.Distrusted, item(it))
		case it.PrivateKey == nil:
			// Trusted for verification only: it was never a primary, and
			// the procedure leaves it as the operator put it.
			st.TrustOnly = append(st.TrustOnly, item(it))
		case newer(it, ks.Primary):
			if usable(it) {
				st.Staged = append(st.Staged, item(it))
			}
		default:
			st.Previous = append(st.Previous, item(it))
		}
	}
	switch {
	case len(st.Staged) > 0:
		st.Stage = StageStaged
	case len(st.Previous) > 0:
		st.Stage = StagePromoted
	case distrustedSince(st, st.Primary.Created):
		st.Stage = StageDistrusted
	default:
		st.Stage = StageIdle
	}
	return st, nil
}

// distrustedSince reports whether a keypair older than the primary was
// distrusted after t: the previous keys of this rotation, rather than an
// earlier rotation's or a staged key abandoned by a rollback.
func distrustedSince(st KeysetStatus, t time.Time) bool {
	for _, d := range st.Distrusted {
		// kOps stores distrust times with whole seconds.
		if d.Distrusted != nil && !d.Distrusted.Before(t.Truncate(time.Second)) && fi.KeysetItemIdOlder(d.ID, st.Primary.ID) {
			return true
		}
	}
	return false
}

func sortedItems(ks *fi.Keyset) []*fi.KeysetItem {
	items := make([]*fi.KeysetItem, 0, len(ks.Items))
	for _, it := range ks.Items {
		if it != nil { // memfs stores can hand back nil entries
			items = append(items, it)
		}
	}
	sort.Slice(items, func(i, j int) bool { return fi.KeysetItemIdOlder(items[i].Id, items[j].Id) })
	return items
}

// Statuses returns the rotatable keysets (all, or those named) with the
// stage each one's keypairs show, and nothing else: the keysets are the
// whole of it. (Status adds what the record knows: that a distrusted
// rotation was rolled and exported, so it is over.)
func (s *Store) Statuses(ctx context.Context, names []string) ([]KeysetStatus, error) {
	_, keysets, err := s.withStatus(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make([]KeysetStatus, 0, len(keysets))
	for _, k := range keysets {
		out = append(out, k.st)
	}
	return out, nil
}

// keyset is one selected keyset with its status.
type keyset struct {
	name string
	set  *fi.Keyset
	st   KeysetStatus
}

// withStatus opens a fresh keystore and returns the selected keysets with
// their status, in name order.
func (s *Store) withStatus(ctx context.Context, names []string) (fi.CAStore, []keyset, error) {
	ks, sets, err := s.load(ctx, names)
	if err != nil {
		return nil, nil, err
	}
	out := make([]keyset, 0, len(sets))
	for _, name := range sortedNames(sets) {
		st, err := status(name, sets[name])
		if err != nil {
			return nil, nil, err
		}
		out = append(out, keyset{name: name, set: sets[name], st: st})
	}
	return ks, out, nil
}

// load opens a fresh keystore and reads the selected keysets.
func (s *Store) load(ctx context.Context, names []string) (fi.CAStore, map[string]*fi.Keyset, error) {
	ks, err := s.keystore()
	if err != nil {
		return nil, nil, err
	}
	sets, err := s.selected(ctx, ks, names)
	return ks, sets, err
}

// selected returns the named keysets (all rotatable ones for none or "all"),
// refusing unknown and non-rotatable names.
func (s *Store) selected(ctx context.Context, ks fi.CAStore, names []string) (map[string]*fi.Keyset, error) {
	if len(names) == 0 || len(names) == 1 && names[0] == "all" {
		all, err := ks.ListKeysets()
		if err != nil {
			return nil, fmt.Errorf("listing the keysets of cluster %s: %w", s.Cluster, err)
		}
		out := map[string]*fi.Keyset{}
		for name, set := range all {
			if Rotatable(name) && set != nil {
				out[name] = set
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("cluster %s has no rotatable keysets yet: they are created by `kops update cluster`", s.Cluster)
		}
		return out, nil
	}
	out := map[string]*fi.Keyset{}
	for _, name := range names {
		if !Rotatable(name) {
			return nil, fmt.Errorf("keyset %q is not rotated by kOps' procedure: only service-account and the CAs (names containing \"-ca\") are", name)
		}
		set, err := ks.FindKeyset(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("reading keyset %s: %w", name, err)
		}
		if set == nil {
			return nil, fmt.Errorf("keyset %q not found in cluster %s: see `%s status` for the keysets it has", name, s.Cluster, display.KopsRotate(ctx))
		}
		out[name] = set
	}
	return out, nil
}

func sortedNames(m map[string]*fi.Keyset) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Overall derives the stage of the whole procedure: the least advanced
// stage of any keyset in rotation, so the next command finishes it for
// every keyset.
func Overall(sts []KeysetStatus) Stage {
	order := map[Stage]int{StageStaged: 0, StagePromoted: 1, StageDistrusted: 2, StageIdle: 3}
	best := StageIdle
	for _, st := range sts {
		if order[st.Stage] < order[best] {
			best = st.Stage
		}
	}
	return best
}

// Change is one keyset change made by a step.
type Change struct {
	Keyset string `json:"keyset"`
	Action string `json:"action"`
	ID     string `json:"id"`
	// Previous is, for a promote, the keypair that was primary before.
	Previous string `json:"previous,omitempty"`
}

// FactPromotedFrom is the journal fact that keeps, per keyset, which
// keypair a promote replaced. The keysets cannot say it: once a keyset had
// two staged keypairs, the previous primary and the other staged one are
// both trusted keypairs older than the primary. It is tied to the id it
// promoted: it applies only while that keypair is the primary.
const FactPromotedFrom = "promoted-from"

// PromotedFrom is a promote as the journal keeps it.
type PromotedFrom struct {
	Promoted string `json:"promoted"`
	Previous string `json:"previous"`
}

// RecordPromote journals the previous primary of each keyset a promote
// changed.
func RecordPromote(r *procedure.Record, changes []Change) error {
	from := PromotedFromJournal(r)
	for _, c := range changes {
		if c.Previous != "" {
			from[c.Keyset] = PromotedFrom{Promoted: c.ID, Previous: c.Previous}
		}
	}
	return r.Put(FactPromotedFrom, from)
}

// PromotedFromJournal reads what RecordPromote kept (none for a journal
// without it).
func PromotedFromJournal(r *procedure.Record) map[string]PromotedFrom {
	from := map[string]PromotedFrom{}
	if r != nil {
		_, _ = r.Get(FactPromotedFrom, &from)
	}
	return from
}

func (c Change) String() string {
	return fmt.Sprintf("%s%s %s %s", strings.ToUpper(c.Action[:1]), c.Action[1:], c.Keyset, c.ID)
}

// Stage creates a new keypair, not primary, in every selected keyset that
// has none staged yet (idempotent, unlike `kops create keypair`).
func (s *Store) Stage(ctx context.Context, names []string) ([]Change, error) {
	ks, keysets, err := s.withStatus(ctx, names)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, k := range keysets {
		name, st := k.name, k.st
		if len(st.Staged) > 0 {
			continue
		}
		key, err := pki.GeneratePrivateKey()
		if err != nil {
			return changes, err
		}
		serial := pki.BuildPKISerial(time.Now().UnixNano())
		cert, _, _, err := pki.IssueCert(ctx, &pki.IssueCertRequest{
			Type:       "ca",
			Subject:    pkix.Name{CommonName: name, SerialNumber: serial.String()},
			Serial:     serial,
			PrivateKey: key,
		}, nil)
		if err != nil {
			return changes, fmt.Errorf("issuing a new keypair for %s: %w", name, err)
		}
		it, err := k.set.AddItem(cert, key, false)
		if err != nil {
			return changes, fmt.Errorf("adding a keypair to %s: %w", name, err)
		}
		if err := ks.StoreKeyset(ctx, name, k.set); err != nil {
			return changes, fmt.Errorf("storing keyset %s: %w", name, err)
		}
		changes = append(changes, Change{Keyset: name, Action: "staged", ID: it.Id})
	}
	return changes, nil
}

// Promote makes the newest staged keypair of each selected keyset its
// primary. Keysets with nothing staged are left alone; if no keyset has
// anything staged, that is an error.
func (s *Store) Promote(ctx context.Context, names []string) ([]Change, error) {
	ks, keysets, err := s.withStatus(ctx, names)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, k := range keysets {
		name, st := k.name, k.st
		if len(st.Staged) == 0 {
			continue
		}
		newest := st.Staged[len(st.Staged)-1].ID
		previous := k.set.Primary.Id
		k.set.Primary = k.set.Items[newest]
		if err := ks.StoreKeyset(ctx, name, k.set); err != nil {
			return changes, fmt.Errorf("storing keyset %s: %w", name, err)
		}
		changes = append(changes, Change{Keyset: name, Action: "promoted", ID: newest, Previous: previous})
	}
	if len(changes) == 0 {
		return nil, fmt.Errorf("nothing staged to promote: run `%s stage` first", display.KopsRotate(ctx))
	}
	return changes, nil
}

// Distrust distrusts every trusted keypair older than the primary in each
// selected keyset. It refuses while any selected keyset still has a staged
// keypair (not promoted), unless force. (The gate on the kubeconfig export
// since the promote is the procedure's: it is in the record, not in the
// keysets; see KeysetStep and Run.)
func (s *Store) Distrust(ctx context.Context, names []string, force bool) ([]Change, error) {
	ks, keysets, err := s.withStatus(ctx, names)
	if err != nil {
		return nil, err
	}
	if !force {
		var notPromoted []string
		for _, k := range keysets {
			if k.st.Stage == StageStaged {
				notPromoted = append(notPromoted, k.name)
			}
		}
		if len(notPromoted) > 0 {
			return nil, fmt.Errorf("not promoted yet: %s; run `%s promote` (and roll the cluster) first, or pass --force", strings.Join(notPromoted, ", "), display.KopsRotate(ctx))
		}
	}
	now := time.Now().UTC().Round(0)
	var changes []Change
	for _, k := range keysets {
		name, st := k.name, k.st
		if len(st.Previous) == 0 {
			continue
		}
		for _, p := range st.Previous {
			k.set.Items[p.ID].DistrustTimestamp = &now
			changes = append(changes, Change{Keyset: name, Action: "distrusted", ID: p.ID})
		}
		if err := ks.StoreKeyset(ctx, name, k.set); err != nil {
			return changes, fmt.Errorf("storing keyset %s: %w", name, err)
		}
	}
	if len(changes) == 0 {
		return nil, fmt.Errorf("nothing to distrust: no keyset has a trusted keypair older than its primary")
	}
	return changes, nil
}

// Rollback undoes each selected keyset's current stage: staged → the
// staged keypairs are distrusted; promoted → the previous primary is
// promoted back; distrusted → the keypairs distrusted in this rotation are
// trusted again. Which keypair was the previous primary comes from from
// (the journal's promotes, PromotedFromJournal); without it, only a keyset
// with one candidate is rolled back, and rollback refuses (nothing
// changed) rather than guess between several.
func (s *Store) Rollback(ctx context.Context, names []string, from map[string]PromotedFrom) ([]Change, error) {
	ks, keysets, err := s.withStatus(ctx, names)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Round(0)
	var changes []Change
	for _, k := range keysets {
		name, set, st := k.name, k.set, k.st
		switch st.Stage {
		case StageStaged:
			for _, it := range st.Staged {
				set.Items[it.ID].DistrustTimestamp = &now
				changes = append(changes, Change{Keyset: name, Action: "distrusted", ID: it.ID})
			}
		case StagePromoted:
			prev, err := previousPrimary(name, set, st, from)
			if err != nil {
				return changes, err
			}
			if !usable(set.Items[prev]) {
				return changes, fmt.Errorf("keyset %s: the previous primary %s has no private key or certificate: it cannot be promoted back", name, prev)
			}
			set.Primary = set.Items[prev]
			changes = append(changes, Change{Keyset: name, Action: "promoted back", ID: prev})
		case StageDistrusted:
			for _, d := range st.Distrusted {
				if d.Distrusted != nil && !d.Distrusted.Before(st.Primary.Created.Truncate(time.Second)) && fi.KeysetItemIdOlder(d.ID, st.Primary.ID) {
					set.Items[d.ID].DistrustTimestamp = nil
					changes = append(changes, Change{Keyset: name, Action: "trusted again", ID: d.ID})
				}
			}
		default:
			continue
		}
		if err := ks.StoreKeyset(ctx, name, set); err != nil {
			return changes, fmt.Errorf("storing keyset %s: %w", name, err)
		}
	}
	if len(changes) == 0 {
		return nil, fmt.Errorf("nothing to roll back: every keyset is idle")
	}
	return changes, nil
}

// previousPrimary is the keypair a promoted keyset's promote replaced: the
// journal's, while the keypair it promoted is still the primary; else the
// one trusted keypair with a private key older than the primary.
func previousPrimary(name string, set *fi.Keyset, st KeysetStatus, from map[string]PromotedFrom) (string, error) {
	if f, ok := from[name]; ok && f.Promoted == st.Primary.ID && set.Items[f.Previous] != nil {
		return f.Previous, nil
	}
	var candidates []string
	for _, p := range st.Previous {
		if usable(set.Items[p.ID]) {
			candidates = append(candidates, p.ID)
		}
	}
	switch len(candidates) {
	case 0:
		return "", fmt.Errorf("keyset %s: no trusted keypair older than the primary has a private key: there is nothing to promote back", name)
	case 1:
		return candidates[0], nil
	}
	return "", fmt.Errorf("keyset %s: which keypair was the primary before is not known (it was promoted outside kops-rotate) and %d could have been: %s; promote the right one back with `kops promote keypair %s ID`, then update and roll the cluster",
		name, len(candidates), strings.Join(candidates, ", "), name)
}
