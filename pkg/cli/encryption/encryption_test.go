package encryption

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/etcdstore"
)

func TestFileTargetRefusesBadFlagsInOneLine(t *testing.T) {
	for _, c := range []struct {
		name string
		t    FileTarget
		want string
	}{
		{"no config", FileTarget{}, "no configuration: pass --config FILE"},
		{"cert without key", FileTarget{Config: "f", Etcd: etcdstore.Options{Endpoints: []string{"http://127.0.0.1:2379"}, Cert: "c"}}, "--etcd-cert and --etcd-key go together"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.t.Options(context.Background(), true, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line with %q", err, c.want)
			}
		})
	}
}

func TestFileTargetAct(t *testing.T) {
	for _, c := range []struct {
		dryRun string
		act    bool
		err    string
	}{
		{"", true, ""},
		{"none", true, ""},
		{"client", false, ""},
		{"server", false, "--dry-run=server is not supported here"},
	} {
		cmd := &cobra.Command{}
		cmdutil.AddDryRunFlag(cmd)
		if c.dryRun != "" {
			if err := cmd.Flags().Set("dry-run", c.dryRun); err != nil {
				t.Fatal(err)
			}
		}
		act, err := (&FileTarget{}).Act(cmd)
		if act != c.act || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("--dry-run=%s: act %v err %v, want %v %q", c.dryRun, act, err, c.act, c.err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Output: "wide"}, `--output "wide" is not supported`},
		{Options{Workers: -1}, "take positive values"},
		{Options{Output: "json"}, ""},
	} {
		err := c.o.Validate()
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
}
