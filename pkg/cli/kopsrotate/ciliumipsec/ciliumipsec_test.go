package ciliumipsec

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kops/pkg/client/simple/vfsclientset"
	"k8s.io/kops/upup/pkg/fi"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/clusterflags"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

var testKey = strings.Repeat("c3", 20)

// store is a file:// state store with a Cilium IPsec cluster and, unless
// secret is "", its ciliumpassword secret.
func store(t *testing.T, secret string) *clusterflags.Flags {
	t.Helper()
	ctx := context.Background()
	base := "file://" + filepath.Join(t.TempDir(), "state")
	kopstest.Seed(t, base, vfs.Context)
	p, err := vfs.Context.BuildVfsPath(base + "/" + kopstest.ClusterName + "/config")
	if err != nil {
		t.Fatal(err)
	}
	cfg := "apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: " + kopstest.ClusterName + "\nspec:\n  networking:\n    cilium:\n      enableEncryption: true\n"
	if err := p.WriteFile(ctx, strings.NewReader(cfg), nil); err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		root, _ := vfs.Context.BuildVfsPath(base)
		cs := vfsclientset.NewVFSClientset(vfs.Context, root)
		c, err := cs.GetCluster(ctx, kopstest.ClusterName)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := cs.SecretStore(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ss.GetOrCreateSecret(ctx, "ciliumpassword", &fi.Secret{Data: []byte(secret)}); err != nil {
			t.Fatal(err)
		}
	}
	return &clusterflags.Flags{Name: kopstest.ClusterName, State: base}
}

func options(f *clusterflags.Flags, yes bool, format string) (*Options, *bytes.Buffer, *bytes.Buffer, *[]string) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	var calls []string
	o := &Options{Cluster: f, Yes: yes, Output: format, Name: "kops-rotate", PrintFlags: genericclioptions.NewJSONYamlPrintFlags(),
		IOStreams: genericiooptions.IOStreams{Out: out, ErrOut: errOut},
		Runner: func(_ context.Context, args []string) error {
			calls = append(calls, strings.Join(args, " "))
			return nil
		},
		KopsVersion: func(context.Context) (string, error) { return "1.36.2", nil },
	}
	return o, out, errOut, &calls
}

func run(t *testing.T, o *Options) error {
	t.Helper()
	if err := o.Complete(nil, nil); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	return o.Run(context.Background())
}

func TestPlanAndRotate(t *testing.T) {
	f := store(t, "keys: 15+ rfc4106(gcm(aes)) "+testKey+" 128\n")
	target := "--name " + f.Name + " --state " + f.State

	o, out, _, calls := options(f, false, "")
	if err := run(t, o); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"key id 15, spi 15+ rfc4106(gcm(aes)) (20-byte key) 128.",
		"Rotation: key id 15 -> 1. Steps (nothing was changed; add --yes to run them):",
		"  kops update cluster --yes " + target,
		"  kops rolling-update cluster --yes " + target,
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("plan lacks %q:\n%s", w, out)
		}
	}
	if len(*calls) != 0 {
		t.Errorf("the plan ran kops: %q", *calls)
	}

	o, out, errOut, calls := options(f, true, "json")
	if err := run(t, o); err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if rep.Kind != Kind || rep.APIVersion != "rotate.kube-rotate.io/v1alpha1" || rep.DryRun || rep.FromSPI != 15 || rep.ToSPI != 1 || rep.CurrentSPI != 1 || rep.Change == nil || rep.Change.NewSPI != 1 || !rep.Complete() {
		t.Errorf("report: %s", out)
	}
	if strings.Join(*calls, "\n") != "update cluster --yes "+target+"\nrolling-update cluster --yes "+target {
		t.Errorf("kops calls: %q", *calls)
	}
	if !strings.Contains(errOut.String(), "Rotating the Cilium IPsec key of cluster test.example.com: key id 15 -> 1.") {
		t.Errorf("progress (stderr with -o):\n%s", errOut)
	}
	for _, s := range []string{out.String(), errOut.String()} {
		if strings.Contains(s, testKey[:16]) {
			t.Errorf("output shows the old key: %s", s)
		}
	}

	// Now at 1; the next plan is 1 -> 2, as YAML.
	o, out, _, _ = options(f, false, "yaml")
	if err := run(t, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "currentSPI: 1\n") || !strings.Contains(out.String(), "toSPI: 2\n") || !strings.Contains(out.String(), "dryRun: true\n") {
		t.Errorf("-o yaml:\n%s", out)
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct{ name, secret, want string }{
		{"no secret", "", "has no ciliumpassword secret: create one with `kops create secret ciliumpassword -f FILE`"},
		{"malformed", "keys: 3+ rfc4106(gcm(aes)) " + testKey + "\n", "secret ciliumpassword of cluster test.example.com: the Cilium IPsec key has 3 fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := store(t, tc.secret)
			o, _, _, calls := options(f, true, "")
			err := run(t, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), testKey[:16]) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
			if len(*calls) != 0 {
				t.Errorf("kops ran: %q", *calls)
			}
		})
	}
	o, _, _, _ := options(store(t, ""), false, "table")
	if err := run(t, o); err == nil || !strings.Contains(err.Error(), "use json or yaml") {
		t.Errorf("-o table: %v", err)
	}
	o, _, _, _ = options(store(t, ""), false, "")
	if err := o.Complete(nil, []string{"extra"}); err == nil {
		t.Error("an argument was taken")
	}
}
