// Package model_test keeps the models pure: no package under pkg/model may
// reach an API server, a state store, a process or another layer of the
// core. A model that needs I/O gets it from its caller (cluster/keystore
// loads and saves key sets for model/jwks, for example).
package model_test

import (
	"os/exec"
	"strings"
	"testing"
)

func TestModelsArePure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"k8s.io/client-go/kubernetes", "k8s.io/client-go/dynamic", "k8s.io/client-go/rest",
		"k8s.io/kops/", "os/exec", "go.etcd.io/etcd/client",
		"github.com/kube-rotate/kube-rotate/pkg/cluster/", "github.com/kube-rotate/kube-rotate/pkg/rotators/",
		"github.com/kube-rotate/kube-rotate/pkg/cli/", "github.com/kube-rotate/kube-rotate/pkg/action",
		"github.com/kube-rotate/kube-rotate/pkg/github", "github.com/kube-rotate/kube-rotate/pkg/procedure",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f) {
				t.Errorf("a model depends on %s: move the I/O to pkg/cluster or pkg/rotators (go list -deps ./pkg/model/... shows who imports it)", dep)
			}
		}
	}
}
