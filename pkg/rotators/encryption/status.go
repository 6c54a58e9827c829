package encryption

import (
	"context"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	clusterenc "github.com/kube-rotate/kube-rotate/pkg/cluster/encryption"
	"github.com/kube-rotate/kube-rotate/pkg/model/encryptionconfig"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// Status is where a rotation stands (-o json|yaml of the status
// commands).
type Status = v1alpha1.EncryptionRotationStatus

// Status reads where the rotation stands; it writes nothing.
func (o *Options) Status(ctx context.Context) (*Status, error) {
	st, err := o.state(ctx)
	if err != nil {
		return nil, err
	}
	r, err := o.loadRecord(ctx)
	if err != nil {
		return nil, err
	}
	s := &Status{TypeMeta: v1alpha1.TypeMeta(v1alpha1.KindEncryptionRotationStatus), Source: o.Source.String(), Stage: string(st.Stage), Key: st.Key, Old: st.Old, Hash: clusterenc.ConfigHash(st.Doc),
		Failed: r.Failed, Error: r.Error, Rollback: r.String(factRollback)}
	for _, p := range st.Config.Providers {
		ps := v1alpha1.EncryptionProvider{Index: p.Index, Resources: p.Resources, Type: p.Type}
		for i, k := range p.Keys {
			ks := v1alpha1.EncryptionKey{Name: k.Name, Encrypts: i == 0, Bytes: k.Size}
			if t := k.Created(); !t.IsZero() {
				mt := metav1.NewTime(t)
				ks.Created = &mt
			}
			ps.Keys = append(ps.Keys, ks)
		}
		s.Providers = append(s.Providers, ps)
	}
	for name := range r.Steps {
		s.Steps = append(s.Steps, name)
	}
	s.Rewritten = r.String(factRewrittenUnder) == s.Hash
	var sums []clusterenc.Summary
	_, _ = r.Get(factSummary, &sums)
	for _, x := range sums {
		s.Rewrite = append(s.Rewrite, v1alpha1.EncryptionRewrite{Resource: x.Resource, Rewritten: x.Rewritten, Conflicts: x.Conflicts, Gone: x.Gone, Elapsed: x.Elapsed.Round(time.Millisecond).String()})
	}
	sort.Strings(s.Steps)
	if kept, err := o.Source.Kept(ctx); err != nil {
		return nil, err
	} else if kept != nil {
		s.RetiredKept = o.Source.KeptAt()
	}
	if o.Kube != nil {
		pending, err := clusterenc.Loaded(ctx, o.Kube, st.Doc, nil)
		if err != nil {
			return nil, err
		}
		s.Pending, s.Checked = pending, true
	}
	if o.Stored != nil {
		var keys []string
		for _, p := range st.Config.Providers {
			for _, k := range p.Keys {
				keys = append(keys, k.Name)
			}
		}
		if s.Stored, err = o.Stored(ctx, st.Resources(), st.Prefixes(keys)); err != nil {
			return nil, err
		}
	}
	s.Next = o.next(st, r, s)
	return s, nil
}

func (o *Options) next(st *State, r *procedure.Record, s *Status) string {
	switch {
	case s.Rollback != "":
		return o.cmd("rollback")
	case st.Stage == encryptionconfig.StageIdle:
		return o.cmd("stage")
	case st.Stage == encryptionconfig.StageStaged:
		if !r.Marked(StepLoadedStage) {
			return o.cmd("stage")
		}
		return o.cmd("promote")
	case !r.Marked(StepLoadedPromote):
		return o.cmd("promote")
	case !s.Rewritten:
		return o.cmd("rewrite")
	}
	return o.cmd("retire")
}
