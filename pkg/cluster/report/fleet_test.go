package report

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// Three clusters hold app/db: each item names its cluster, a cluster that
// cannot be read is reported and the others stand, and each cluster has
// its own counts.
func TestBuildFleet(t *testing.T) {
	var members []Member
	for _, name := range []string{"prod", "staging", "qa"} {
		kc, md := cluster(t, secret("app", "db", func(s *corev1.Secret) {
			if name == "prod" {
				s.Annotations[v1alpha1.RotatedAt] = ago(100 * day).Format("2006-01-02T15:04:05Z07:00")
			}
		}))
		if name == "qa" {
			md.PrependReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, errors.New("connection refused")
			})
		}
		members = append(members, Member{Name: name, Context: name + "-ctx", Server: "https://" + name, Kube: kc, Metadata: md, Namespace: "app", CommandContext: name + "-ctx"})
	}
	for _, workers := range []int{1, 2, 8} {
		r, err := BuildFleet(context.Background(), Options{Policy: testPolicy(t), Now: now}, members, workers)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range r.Items {
			ids = append(ids, it.ID+"="+string(it.State)+"@"+it.Cluster)
			if want := " --context " + it.Cluster + "-ctx"; !strings.HasSuffix(it.Commands[0], want) {
				t.Errorf("workers %d: %s: command %q lacks %q", workers, it.ID, it.Commands[0], want)
			}
		}
		if got := strings.Join(ids, " "); got != "secret:prod/app/db=overdue@prod secret:staging/app/db=ok@staging" {
			t.Errorf("workers %d: items %s", workers, got)
		}
		if len(r.Errors) != 1 || !strings.HasPrefix(r.Errors[0], "cluster qa (context qa-ctx): ") || !strings.Contains(r.Errors[0], "connection refused") {
			t.Errorf("workers %d: errors %q", workers, r.Errors)
		}
		var got []string
		for _, c := range r.Clusters {
			got = append(got, c.Name+":"+c.Context+":"+strings.Join([]string{itoa(c.Summary.Total), itoa(c.Summary.Overdue)}, "/")+":"+c.Error)
		}
		if s := strings.Join(got, " "); !strings.HasPrefix(s, "prod:prod-ctx:1/1: staging:staging-ctx:1/0: qa:qa-ctx:0/0:") {
			t.Errorf("workers %d: clusters %s", workers, s)
		}
		if l := LegacyID(r.Items[0]); l != "secret:app/db" {
			t.Errorf("legacy id %q", l)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
