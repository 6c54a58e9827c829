package report

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeduration "k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/externalsecrets"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/inventory"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/keystore"
	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/policy"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
)

// Options say what to check and against which policy.
type Options struct {
	Policy *policy.Policy
	// PolicyName is shown in the report (a path, or the flags used).
	PolicyName string

	// Kube and Metadata: the cluster's clients; nil skips the cluster.
	Kube     kubernetes.Interface
	Metadata metadata.Interface
	// Context and Server say how Kube reaches the cluster (shown in the
	// report's clusters).
	Context, Server string
	// Cluster is the identity of the cluster Kube reaches
	// (kube.Target.Cluster): it is in every id and item of its Secrets.
	// Empty gives the ids of before clusters were named (secret:NS/NAME).
	Cluster string
	// Namespace to check, "" for all.
	Namespace string
	// Selector is a label selector on Secrets.
	Selector string

	// KopsState and KopsCluster name a kOps cluster to check; both empty
	// skips kOps. VFS is nil for kOps' default context.
	KopsState, KopsCluster string
	VFS                    *vfs.VFSContext

	// JWKSFiles are key-set files (offline, or kept in a repository).
	JWKSFiles []string

	// Now is the time ages are measured at; zero means time.Now().
	Now time.Time
}

// Build checks every credential the options name. Sources that cannot be
// read (a cluster that is down, a missing file) fail the whole report:
// an audit that silently skips a source would report "ok" for it.
func Build(ctx context.Context, o Options) (*Report, error) {
	var members []Member
	if o.Kube != nil {
		members = []Member{{Name: o.Cluster, Context: o.Context, Server: o.Server, Kube: o.Kube, Metadata: o.Metadata, Namespace: o.Namespace}}
	}
	r, failed, err := buildFleet(ctx, o, members, 1)
	if err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		return nil, failed[0]
	}
	return r, nil
}

// Member is one cluster of a fleet: its identity, how it was reached and
// its clients.
type Member struct {
	Name, Context, Server string
	// AlsoContexts point at the same cluster (scanned once).
	AlsoContexts []string
	Kube         kubernetes.Interface
	Metadata     metadata.Interface
	// Namespace to check, "" for all.
	Namespace string
	// CommandContext, when set, is added to every command as --context, so
	// a command copied from a fleet report acts on the right cluster.
	CommandContext string
}

// BuildFleet checks the Secrets of every member, at most workers clusters
// at once, plus the options' key-set files and kOps cluster once (the
// options' own Kube, Cluster and Namespace are not used). A member that
// cannot be read is reported in Clusters and Errors (one line each) and
// the others stand; a key-set file or kOps state store that cannot be read
// fails the whole report.
func BuildFleet(ctx context.Context, o Options, members []Member, workers int) (*Report, error) {
	r, _, err := buildFleet(ctx, o, members, workers)
	return r, err
}

func buildFleet(ctx context.Context, o Options, members []Member, workers int) (*Report, []error, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	r := &Report{TypeMeta: metav1.TypeMeta{APIVersion: policy.APIVersion, Kind: Kind}, Generated: metav1.NewTime(now), Policy: o.PolicyName, Items: []Item{}}
	if workers < 1 {
		workers = 1
	}
	type result struct {
		items [][]Item
		err   error
	}
	results := make([]result, len(members))
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i := range members {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			m := members[i]
			mo := o
			mo.Kube, mo.Metadata, mo.Namespace, mo.Cluster = m.Kube, m.Metadata, m.Namespace, m.Name
			items, err := secretItems(ctx, mo, now)
			if err == nil && m.CommandContext != "" {
				for _, chunk := range items {
					for j := range chunk {
						for k, c := range chunk[j].Commands {
							chunk[j].Commands[k] = c + " --context " + m.CommandContext
						}
					}
				}
			}
			results[i] = result{items, err}
		}(i)
	}
	wg.Wait()
	var failed []error
	// The items of the members, the key-set files and kOps, in that
	// order: gathered first, then copied once into a slice of their
	// exact size (for 10,000 Secrets, appending them grew the slice to
	// twice their size, and copied them twice).
	var all [][]Item
	for i, m := range members {
		c := v1alpha1.ReportCluster{Name: m.Name, Context: m.Context, Server: m.Server, AlsoContexts: m.AlsoContexts}
		if err := results[i].err; err != nil {
			failed = append(failed, err)
			c.Error = oneLine(err.Error())
			r.Errors = append(r.Errors, memberName(m)+": "+c.Error)
		} else {
			all = append(all, results[i].items...)
			results[i].items = nil
		}
		r.Clusters = append(r.Clusters, c)
	}
	for _, f := range o.JWKSFiles {
		items, err := fileItems(ctx, o.Policy, f, now)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, items)
	}
	if o.KopsState != "" || o.KopsCluster != "" {
		items, err := kopsItems(ctx, o, now)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, items)
		if !slices.ContainsFunc(r.Clusters, func(c v1alpha1.ReportCluster) bool { return c.Name == o.KopsCluster }) {
			r.Clusters = append(r.Clusters, v1alpha1.ReportCluster{Name: o.KopsCluster})
		}
	}
	n := 0
	for _, chunk := range all {
		n += len(chunk)
	}
	r.Items = make([]Item, 0, n)
	for i, chunk := range all {
		r.Items = append(r.Items, chunk...)
		all[i] = nil
	}
	finish(r)
	return r, failed, nil
}

// memberName names a member in an error line: cluster prod (context p).
func memberName(m Member) string {
	s := "cluster " + m.Name
	if m.Context != "" && m.Context != m.Name {
		s += " (context " + m.Context + ")"
	}
	return s
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// secretItems checks the Secrets of the cluster, and returns the items in
// chunks of itemChunk or fewer. The Secrets are read one page at a time
// (inventory.Each): what stays is the report's items, not the Secrets, so
// memory grows with the report alone.
func secretItems(ctx context.Context, o Options, now time.Time) ([][]Item, error) {
	tool := display.KubectlRotate(ctx)
	types := o.Policy.Types()
	var chunks [][]Item
	var cur []Item
	add := func(its ...Item) {
		for _, it := range its {
			if len(cur) == cap(cur) {
				cur = make([]Item, 0, itemChunk)
				chunks = append(chunks, nil)
			}
			if o.Cluster != "" {
				it.Cluster = o.Cluster
			}
			cur = append(cur, it)
			chunks[len(chunks)-1] = cur
		}
	}
	err := inventory.Each(ctx, o.Metadata, o.Kube, inventory.ScanOptions{
		Namespace: o.Namespace, Selector: o.Selector, Types: types,
		WantData: func(m *metav1.ObjectMeta) bool {
			_, rec := m.Annotations[jwks.RecordsAnnotation]
			return rec || o.Policy.SelectsKeySet(m.Namespace, m.Name, m.Labels)
		},
	}, func(s *inventory.Secret) error {
		if s.Full != nil && s.Type != corev1.SecretTypeTLS {
			if ks := keySetItems(tool, o.Policy, s, o.Cluster, now); ks != nil {
				add(ks...)
				return nil
			}
		}
		add(secretItem(tool, o.Policy, s, o.Cluster, now))
		return nil
	})
	if err != nil {
		return nil, err
	}
	// In the listing's order: finish sorts them by state and id (unique
	// but among one key set's items, which come in their set's order).
	return chunks, nil
}

// itemChunk is how many items secretItems puts in one chunk.
const itemChunk = 1024

// secretItem checks one Secret (or TLS certificate) as a whole.
func secretItem(tool string, p *policy.Policy, s *inventory.Secret, cluster string, now time.Time) Item {
	m := &s.Meta
	kind, id := policy.KindSecret, "secret:"
	if s.Type == corev1.SecretTypeTLS {
		kind, id = policy.KindTLS, "tls:"
	}
	it := Item{ID: id + clusterPrefix(cluster) + m.Namespace + "/" + m.Name, Kind: kind, Credential: "secret/" + m.Name, Namespace: m.Namespace, Name: m.Name, Labels: m.Labels}
	if m.Namespace != "" {
		it.Credential = m.Namespace + "/" + m.Name
	}
	setAge(&it, s.Age.Since, s.Age.Source, now)
	it.NotAfter = v1alpha1.TimePtr(s.Age.NotAfter)
	l, rule := p.For(policy.Credential{Kind: kind, Namespace: m.Namespace, Name: m.Name, Type: string(s.Type), Labels: m.Labels})
	setLimits(&it, l, rule)
	evaluate(&it, l, now)
	it.Commands = secretCommands(tool, s, kind)
	if it.State == policy.StateOK && m.Annotations[v1alpha1.Phase] == v1alpha1.PhaseWritten {
		it.State, it.Reason = policy.StateWarn, "a rotation stopped before its consumers were restarted: re-run it to finish"
	}
	return it
}

// secretCommands says how to rotate a Secret: the way it was rotated
// last, an ExternalSecret's force-sync, cert-manager's renew, or a new
// random value for each key it holds.
func secretCommands(tool string, s *inventory.Secret, kind string) []string {
	m := &s.Meta
	target := m.Name + nsFlag(m.Namespace)
	// The operator labels every Secret it writes, whatever the creation
	// policy; only Owner adds an owner reference.
	if m.Labels[externalsecrets.LabelManaged] == "true" {
		return []string{tool + " secret " + target + " --force-sync"}
	}
	for _, or := range m.OwnerReferences {
		if or.Kind == "ExternalSecret" {
			return []string{tool + " secret " + target + " --force-sync"}
		}
	}
	if kind == policy.KindTLS {
		if cert := m.Annotations["cert-manager.io/certificate-name"]; cert != "" {
			return []string{"cmctl renew " + cert + nsFlag(m.Namespace)}
		}
		return []string{tool + " secret " + target + " --from-file tls.crt=NEW.crt --from-file tls.key=NEW.key"}
	}
	if method := m.Annotations[v1alpha1.Method]; method != "" {
		return []string{tool + " secret " + target + " " + method}
	}
	keys := s.DataKeys
	if len(keys) == 0 {
		keys = []string{"KEY"}
	}
	var b strings.Builder
	b.WriteString(tool + " secret " + target)
	for _, k := range keys {
		b.WriteString(" --key " + k)
	}
	b.WriteString(" --generate random:32")
	return []string{b.String()}
}

// clusterPrefix is how a cluster's identity starts the path of an id:
// secret:CLUSTER/NS/NAME, as kops-keyset:CLUSTER/KEYSET.
func clusterPrefix(cluster string) string {
	if cluster == "" {
		return ""
	}
	return cluster + "/"
}

// LegacyID is the id an item had before ids named their cluster
// (secret:NS/NAME for secret:CLUSTER/NS/NAME), or "" when it had no other:
// kOps keysets always named theirs, key-set files belong to no cluster.
// The Action adopts issues opened under it.
func LegacyID(it Item) string {
	if it.Cluster == "" || it.Kind == policy.KindKeyset || it.File != "" {
		return ""
	}
	kind, rest, ok := strings.Cut(it.ID, ":")
	if !ok {
		return ""
	}
	rest, ok = strings.CutPrefix(rest, it.Cluster+"/")
	if !ok {
		return ""
	}
	return kind + ":" + rest
}

func nsFlag(ns string) string {
	if ns == "" {
		return ""
	}
	return " -n " + ns
}

// keySetItems checks the key sets a Secret holds (nil when none of its
// data parses as a JWKS). When no key carries its creation time, the
// Secret's data age stands in for the signing key's (a lower bound).
func keySetItems(tool string, p *policy.Policy, s *inventory.Secret, cluster string, now time.Time) []Item {
	m := &s.Meta
	keys := make([]string, 0, len(s.Full.Data))
	if k := m.Labels[v1alpha1.JWKSKeyLabel]; k != "" && s.Full.Data[k] != nil {
		keys = append(keys, k)
	} else {
		for k := range s.Full.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	rec, _ := jwks.ParseRecords([]byte(m.Annotations[jwks.RecordsAnnotation]))
	var items []Item
	for _, k := range keys {
		set, err := jwks.Parse(s.Full.Data[k])
		if err != nil || len(set.Keys) == 0 {
			continue
		}
		ring := jwks.NewRing(set, "", rec)
		base := Item{Kind: policy.KindJWK, Namespace: m.Namespace, Name: m.Name, Key: k, Labels: m.Labels,
			Credential: m.Namespace + "/" + m.Name + "[" + k + "]"}
		target := " --secret " + m.Name + nsFlag(m.Namespace)
		if k != jwks.DefaultSecretKey {
			target += " --key " + k
		}
		// The data was last written when the set last changed: the signing
		// key is at least that old.
		fallback := &inventory.Age{Since: s.Age.Since, Source: "Secret data written (" + s.Age.Source + "; lower bound)"}
		items = append(items, ringItems(tool, p, ring, base, "jwk:"+clusterPrefix(cluster)+m.Namespace+"/"+m.Name+"/"+k, target, fallback, now)...)
	}
	return items
}

// fileItems checks a key-set file and its records.
func fileItems(ctx context.Context, p *policy.Policy, path string, now time.Time) ([]Item, error) {
	st := &keystore.FileStore{Path: path}
	set, rec, err := st.Load(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("key-set file %s: %w", path, err)
	}
	ring := jwks.NewRing(set, "", rec)
	base := Item{Kind: policy.KindJWK, File: path, Name: filepath.Base(path), Credential: path}
	var fallback *inventory.Age
	if fi, err := os.Stat(path); err == nil && len(rec) == 0 {
		// A file nobody recorded: its modification time is when its keys
		// last changed at the earliest (a checkout resets it).
		fallback = &inventory.Age{Since: fi.ModTime(), Source: "file mtime (lower bound)"}
	}
	items := ringItems(display.KubectlRotate(ctx), p, ring, base, "jwk-file:"+path, " --file "+path, fallback, now)
	if perm := st.OthersPermission(); perm != "" && ring.Layout == jwks.LayoutSlurm {
		for i := range items {
			if strings.HasSuffix(items[i].ID, "#signing") {
				warn(&items[i], perm)
			}
		}
	}
	return items, nil
}

// ringItems checks a key set: its signing key's age against maxAge, and
// each retiring key's time since it stopped signing against overlap.
// Next keys are listed as ok: they sign nothing yet.
func ringItems(tool string, p *policy.Policy, ring *jwks.Ring, base Item, id, target string, fallback *inventory.Age, now time.Time) []Item {
	var items []Item
	ring.Now = func() time.Time { return now }
	ring.Tool = tool
	active := ring.ActiveIndex()
	warnings := ring.Warnings()
	if active < 0 {
		// No key signs (DiracX: none has "sign" in key_ops): the system
		// issues no token at all.
		it := base
		it.ID, it.KeyState = id+"#signing", "none"
		l, rule := p.For(policy.Credential{Kind: policy.KindJWK, Namespace: base.Namespace, Name: base.Name, Labels: base.Labels})
		setLimits(&it, l, rule)
		it.State, it.Reason = policy.StateOverdue, strings.Join(warnings, "; ")
		promote := tool + " jwk promote" + target
		if ring.NewestNext() == "" && len(ring.Set.Keys) > 0 {
			promote += " " + ring.Set.Keys[len(ring.Set.Keys)-1].KID
		}
		it.Commands = []string{promote}
		items = append(items, it)
	}
	for i, k := range ring.Set.Keys {
		it := base
		it.KID, it.KeyState = k.KID, string(ring.State(i))
		it.Credential = base.Credential + " kid " + shortKID(k.KID)
		it.NotAfter = v1alpha1.TimePtr(ring.Expires(k))
		l, rule := p.For(policy.Credential{Kind: policy.KindJWK, Namespace: base.Namespace, Name: base.Name, KID: k.KID, Labels: base.Labels})
		setLimits(&it, l, rule)
		created, source := ring.Created(k)
		switch {
		case !created.IsZero():
			setAge(&it, created, source, now)
		case i == active && fallback != nil:
			setAge(&it, fallback.Since, fallback.Source, now)
		}
		switch ring.State(i) {
		case jwks.StateActive:
			it.ID = id + "#signing"
			evaluate(&it, l, now)
			if it.State == StateUnknown {
				it.Reason = "no creation time: the kid is no uuid7 and no record exists; `" + tool + " jwk rotate` records one"
			}
			for _, w := range warnings {
				warn(&it, w)
			}
			rotate := tool + " jwk rotate" + target
			if l.Overlap.Set {
				rotate += " --delete-older-than " + duration.Format(l.Overlap.Duration)
			}
			it.Commands = []string{rotate}
		case jwks.StateExpired:
			it.ID = id + "#expired:" + k.KID
			it.State = policy.StateOK
			it.Reason = "expired " + kubeduration.HumanDuration(now.Sub(it.NotAfter.Time)) + " ago (exp): Slurm rejects its tokens; delete it"
			it.Commands = []string{tool + " jwk delete" + target + " " + k.KID}
		case jwks.StateRetiring:
			it.ID = id + "#retiring:" + k.KID
			it.State = policy.StateOK
			retired := ring.Records[k.KID].Retired
			switch {
			case !l.Overlap.Set:
				it.Reason = "retiring: verifies only; no overlap set in the policy"
			case retired == nil:
				it.State, it.Reason = StateUnknown, "retiring since an unknown time: delete it once tokens it signed have expired"
			case now.Sub(*retired) >= l.Overlap.Duration:
				it.State = policy.StateOverdue
				it.Reason = "stopped signing " + kubeduration.HumanDuration(now.Sub(*retired)) + " ago; overlap " + it.Overlap + " has passed: delete it"
			default:
				it.Reason = "retiring: may be deleted in " + kubeduration.HumanDuration(l.Overlap.Duration-now.Sub(*retired))
			}
			it.Commands = []string{tool + " jwk delete" + target + " " + k.KID}
		default:
			it.ID = id + "#next:" + k.KID
			it.State, it.Reason = policy.StateOK, "published, not signing yet"
			it.Commands = []string{tool + " jwk promote" + target + " " + k.KID}
		}
		items = append(items, it)
	}
	return items
}

// warn adds a warning to an item's reason; an item that was ok (or of
// unknown age) becomes warn.
func warn(it *Item, w string) {
	if it.State == policy.StateOK || it.State == StateUnknown || it.State == "" {
		it.State = policy.StateWarn
	}
	if it.Reason == "" {
		it.Reason = w
	} else {
		it.Reason += "; " + w
	}
}

func shortKID(kid string) string {
	if len(kid) > 12 {
		return kid[:12] + "…"
	}
	return kid
}

// kopsItems checks the primary keypair of every rotatable keyset.
func kopsItems(ctx context.Context, o Options, now time.Time) ([]Item, error) {
	st, err := kops.Open(ctx, o.KopsState, o.KopsCluster, o.VFS)
	if err != nil {
		return nil, err
	}
	sts, err := st.Status(ctx, nil)
	if err != nil {
		return nil, err
	}
	rec, err := st.ReadRecord(ctx)
	if err != nil {
		return nil, err
	}
	overall := kops.Overall(sts)
	target := " --name " + o.KopsCluster + " --state " + o.KopsState
	var items []Item
	for _, k := range sts {
		it := Item{ID: "kops-keyset:" + o.KopsCluster + "/" + k.Name, Kind: policy.KindKeyset, Cluster: o.KopsCluster, Keyset: k.Name,
			Name: k.Name, Credential: o.KopsCluster + " keyset " + k.Name, KeyState: string(k.Stage)}
		l, rule := o.Policy.For(policy.Credential{Kind: policy.KindKeyset, Keyset: k.Name, Name: k.Name})
		setLimits(&it, l, rule)
		if !k.Primary.Created.IsZero() {
			setAge(&it, k.Primary.Created, "primary keypair "+k.Primary.ID, now)
		}
		// The primary certificate's expiry, as `kops get keypairs` shows it.
		it.NotAfter = v1alpha1.TimePtr(k.Primary.NotAfter)
		evaluate(&it, l, now)
		if overall == kops.StageIdle {
			it.Commands = []string{display.KopsRotate(ctx) + " run --yes" + target}
		} else {
			it.Commands = kops.NextCommands(ctx, overall, rec, o.KopsCluster, o.KopsState)
			if it.State == policy.StateOK {
				it.State, it.Reason = policy.StateWarn, "a keyset rotation is in progress ("+string(overall)+"): finish it with "+display.KopsRotate(ctx)+" run --yes"
			}
		}
		items = append(items, it)
	}
	return items, nil
}
