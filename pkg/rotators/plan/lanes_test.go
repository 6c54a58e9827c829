package plan

import (
	"context"
	"fmt"
	"testing"

	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// The items of one phase run side by side, the items of one Secret in one
// lane (one after another: their writes would conflict), and an item
// waits for the phase of the items it comes after.
func TestItemsRunInLanesByPhaseAndSecret(t *testing.T) {
	p, err := planspec.Parse([]byte(`apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: db}
spec:
  namespace: ns
  items:
  - name: a
    secret: {name: s1, generate: [{key: A, spec: "hex:16"}]}
  - name: c
    after: [a]
    secret: {name: s3, generate: [{key: K, spec: "hex:16"}]}
  - name: b
    secret: {name: s1, generate: [{key: B, spec: "hex:16"}]}
  - name: d
    secret: {name: s2, namespace: other, generate: [{key: K, spec: "hex:16"}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	pr, err := newRun(context.Background(), Options{Plan: p})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range pr.procedure().Steps {
		l, ok := s.(procedure.Laned)
		if !ok {
			got = append(got, s.Name()+" alone")
			continue
		}
		if st := stepOf(s); st.short != StepCreated {
			continue
		}
		w, lane := l.Lane()
		got = append(got, fmt.Sprintf("%s wave %d lane %s", s.Name(), w, lane))
	}
	want := []string{
		"start alone",
		"a/create wave 0 lane ns/s1",
		"b/create wave 0 lane ns/s1",
		"d/create wave 0 lane other/s2",
		"c/create wave 1 lane ns/s3",
		"restart alone",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("steps:\n%v\nwant\n%v", got, want)
	}
}
