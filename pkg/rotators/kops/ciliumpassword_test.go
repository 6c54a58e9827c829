package kops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/kops/pkg/apis/kops/registry"
	"k8s.io/kops/upup/pkg/fi"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/model/ciliumipsec"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

// ciliumKey is a test key whose hex must never show up anywhere printed.
var ciliumKey = strings.Repeat("5a", 20)

func ciliumSecret(spi string) string {
	return "keys: " + spi + " rfc4106(gcm(aes)) " + ciliumKey + " 128\n"
}

// ciliumStore is a state store with a cluster whose spec is spec (as
// kops create -f takes it, v1alpha2) and, unless secret is "", a
// ciliumpassword secret, written as `kops create secret ciliumpassword`
// writes it (GetOrCreateSecret).
func ciliumStore(t *testing.T, spec, secret string) *Store {
	t.Helper()
	ctx := context.Background()
	vctx := vfs.NewTestingVFSContext()
	base := "memfs://cilium-" + t.Name()
	kopstest.Seed(t, base, vctx)
	cfg := "apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: " + kopstest.ClusterName + "\nspec:\n" + spec
	p, err := vctx.BuildVfsPath(base + "/" + kopstest.ClusterName + "/config")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFile(ctx, strings.NewReader(cfg), nil); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, base, kopstest.ClusterName, vctx)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		ss, err := s.clientset.SecretStore(s.cluster)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ss.GetOrCreateSecret(ctx, CiliumPasswordSecret, &fi.Secret{Data: []byte(secret)}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

const ciliumIPsecSpec = "  networking:\n    cilium:\n      enableEncryption: true\n"

// recorder is a kops Runner that records its calls and fails the ones
// named in fail (once each).
type recorder struct {
	calls []string
	fail  map[string]bool
}

func (r *recorder) run(_ context.Context, args []string) error {
	line := strings.Join(args, " ")
	r.calls = append(r.calls, line)
	if r.fail[args[0]] {
		delete(r.fail, args[0])
		return fmt.Errorf("kops %s: exit status 1", line)
	}
	return nil
}

func (s *Store) secretData(t *testing.T) string {
	t.Helper()
	data, _, err := s.CiliumIPsecKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func (s *Store) recordBytes(t *testing.T) string {
	t.Helper()
	j, err := s.ciliumJournal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := read(context.Background(), j.Path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func noCiliumKey(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, ciliumKey) || strings.Contains(s, ciliumKey[:16]) {
		t.Errorf("%s shows the key: %q", what, s)
	}
}

func spiOf(t *testing.T, data string) *ciliumipsec.Key {
	t.Helper()
	k, err := ciliumipsec.ParseSecret([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var update = "update cluster --yes --name " + kopstest.ClusterName + " --state %s"
var roll = "rolling-update cluster --yes --name " + kopstest.ClusterName + " --state %s"

func TestCiliumIPsecRotation(t *testing.T) {
	ctx := context.Background()
	s := ciliumStore(t, ciliumIPsecSpec, ciliumSecret("3+"))
	upd, rol := fmt.Sprintf(update, s.StateStore), fmt.Sprintf(roll, s.StateStore)
	rec := &recorder{}
	var out bytes.Buffer
	clock := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	o := CiliumIPsecOptions{Runner: rec.run, Out: &out, Now: func() time.Time { return clock }}

	// Without Yes: the plan, nothing changed.
	p, err := s.RunCiliumIPsecRotation(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if p.CurrentSPI != 3 || p.FromSPI != 3 || p.ToSPI != 4 || p.Resuming || len(p.Steps) != 3 || p.Complete() {
		t.Errorf("plan: %+v", p)
	}
	if p.Steps[1].Command != "kops "+upd || p.Steps[2].Command != "kops "+rol {
		t.Errorf("plan commands: %q, %q", p.Steps[1].Command, p.Steps[2].Command)
	}
	if len(rec.calls) != 0 || s.secretData(t) != ciliumSecret("3+") || s.recordBytes(t) != "" {
		t.Fatal("a run without Yes changed something")
	}

	// With Yes: the next key, then update and rolling-update.
	o.Yes = true
	if p, err = s.RunCiliumIPsecRotation(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !p.Complete() || p.Change == nil || p.Change.OldSPI != 3 || p.Change.NewSPI != 4 || p.CurrentSPI != 4 || p.FromSPI != 3 || p.ToSPI != 4 || !strings.HasPrefix(p.Key, "spi 4+ ") {
		t.Errorf("after the run: %+v", p)
	}
	if strings.Join(rec.calls, "\n") != upd+"\n"+rol {
		t.Errorf("kops calls: %q", rec.calls)
	}
	k := spiOf(t, s.secretData(t))
	if k.SPI != 4 || !k.PerTunnel || k.AEAD != "rfc4106(gcm(aes))" || k.ICVLen != 128 || strings.Contains(k.Line(), ciliumKey) {
		t.Errorf("the secret holds %s", k)
	}
	if !strings.HasPrefix(s.secretData(t), "keys: 4+ rfc4106(gcm(aes)) ") {
		t.Errorf("secret data is not in kOps' form: %s", k)
	}
	recFile := s.recordBytes(t)
	noCiliumKey(t, "the record", recFile)
	if strings.Contains(recFile, strings.Fields(k.Line())[2]) {
		t.Error("the record holds the new key")
	}
	noCiliumKey(t, "the output", out.String())
	if strings.Contains(out.String(), strings.Fields(k.Line())[2]) {
		t.Error("the output shows the new key")
	}
	if !strings.Contains(out.String(), "ciliumpassword: key id 3 -> 4 (spi 4+ rfc4106(gcm(aes)) (20-byte key) 128)") {
		t.Errorf("output:\n%s", out.String())
	}
	base, _ := registry.ConfigBase(s.vfsContext, s.cluster)
	if want := base.Join("backups", "kops-rotate", "cilium-ipsec.yaml").Path(); p.Record != want {
		t.Errorf("record at %s, want %s (kops delete cluster accepts backups/)", p.Record, want)
	}

	// A finished rotation: the next run starts the next one.
	rec.calls = nil
	if p, err = s.RunCiliumIPsecRotation(ctx, CiliumIPsecOptions{Runner: rec.run}); err != nil || p.Resuming || p.FromSPI != 4 || p.ToSPI != 5 {
		t.Errorf("plan after a finished rotation: %+v, %v", p, err)
	}
}

// A failed kops step is resumed by the re-run without writing the key
// again; the key id goes up by exactly one.
func TestCiliumIPsecResume(t *testing.T) {
	ctx := context.Background()
	s := ciliumStore(t, ciliumIPsecSpec, ciliumSecret("7"))
	upd, rol := fmt.Sprintf(update, s.StateStore), fmt.Sprintf(roll, s.StateStore)
	rec := &recorder{fail: map[string]bool{"rolling-update": true}}
	o := CiliumIPsecOptions{Yes: true, Runner: rec.run}
	_, err := s.RunCiliumIPsecRotation(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "re-run to resume at rolling-update-cluster (the key is not written again)") {
		t.Fatalf("failed roll: %v", err)
	}
	after := s.secretData(t)
	if k := spiOf(t, after); k.SPI != 8 || k.PerTunnel {
		t.Fatalf("after the first run the secret holds %s", k)
	}
	if !strings.Contains(s.recordBytes(t), "failed: rolling-update-cluster") {
		t.Errorf("record:\n%s", s.recordBytes(t))
	}
	// The plan says it resumes.
	p, err := s.CiliumIPsecStatus(ctx)
	if err != nil || !p.Resuming || p.FromSPI != 7 || p.ToSPI != 8 || p.CurrentSPI != 8 || p.Steps[0].Done == nil || p.Steps[1].Done == nil || p.Steps[2].Done != nil {
		t.Fatalf("status: %+v %v", p, err)
	}
	// RotateCiliumIPsecKey refuses to start another one meanwhile.
	if _, err := s.RotateCiliumIPsecKey(ctx, time.Now(), nil); err == nil || !strings.Contains(err.Error(), "has not finished") {
		t.Errorf("rotate during an unfinished rotation: %v", err)
	}
	rec.calls = nil
	if p, err = s.RunCiliumIPsecRotation(ctx, o); err != nil || !p.Complete() || p.Change != nil {
		t.Fatalf("resume: %+v %v", p, err)
	}
	if strings.Join(rec.calls, "\n") != rol {
		t.Errorf("resume ran %q, want only the rolling update", rec.calls)
	}
	if s.secretData(t) != after {
		t.Error("the resume wrote the key again")
	}
	_ = upd
}

// A crash between the record and the write, and between the write and
// its mark: the re-run writes once, and only when it was not written.
func TestCiliumIPsecCrashWindows(t *testing.T) {
	ctx := context.Background()
	for _, written := range []bool{false, true} {
		t.Run(fmt.Sprintf("written=%t", written), func(t *testing.T) {
			s := ciliumStore(t, ciliumIPsecSpec, ciliumSecret("2+"))
			was := s.secretData(t)
			// The record rotateCilium writes before the write.
			j, _ := s.ciliumJournal()
			if _, err := j.Load(ctx); err != nil {
				t.Fatal(err)
			}
			r := &procedure.Record{Procedure: ciliumProcedure, Started: time.Now(), Updated: time.Now()}
			newData := ciliumSecret("3+")
			if written {
				ss, _ := s.clientset.SecretStore(s.cluster)
				if _, err := ss.ReplaceSecret(CiliumPasswordSecret, &fi.Secret{Data: []byte(newData)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Put(factCiliumRotation, ciliumRotationFact{From: 2, To: 3, OldSHA256: ciliumDigest([]byte(was)), NewSHA256: ciliumDigest([]byte(newData))}); err != nil {
				t.Fatal(err)
			}
			if err := j.Save(ctx, r); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			p, err := s.RunCiliumIPsecRotation(ctx, CiliumIPsecOptions{Yes: true, Runner: rec.run})
			if err != nil || !p.Complete() {
				t.Fatalf("%+v %v", p, err)
			}
			if len(rec.calls) != 2 {
				t.Errorf("kops calls %q", rec.calls)
			}
			got := s.secretData(t)
			if written != (got == newData) {
				t.Errorf("written=%t: the re-run wrote again: %t", written, got != newData)
			}
			if k := spiOf(t, got); k.SPI != 3 || !k.PerTunnel {
				t.Errorf("the secret holds %s", k)
			}
			if written != (p.Change == nil) {
				t.Errorf("change: %+v", p.Change)
			}
		})
	}
}

// Someone changed the secret under an unfinished rotation: refused,
// naming the record.
func TestCiliumIPsecChangedUnderRecord(t *testing.T) {
	ctx := context.Background()
	s := ciliumStore(t, ciliumIPsecSpec, ciliumSecret("5"))
	rec := &recorder{fail: map[string]bool{"update": true}}
	if _, err := s.RunCiliumIPsecRotation(ctx, CiliumIPsecOptions{Yes: true, Runner: rec.run}); err == nil {
		t.Fatal("the failing update did not fail the run")
	}
	ss, _ := s.clientset.SecretStore(s.cluster)
	if _, err := ss.ReplaceSecret(CiliumPasswordSecret, &fi.Secret{Data: []byte(ciliumSecret("9"))}); err != nil {
		t.Fatal(err)
	}
	rec.calls = nil
	_, err := s.RunCiliumIPsecRotation(ctx, CiliumIPsecOptions{Yes: true, Runner: rec.run})
	if err == nil || !strings.Contains(err.Error(), "changed since the unfinished rotation in") || !strings.Contains(err.Error(), "key id 5 -> 6") || !strings.Contains(err.Error(), "cilium-ipsec.yaml (a record only)") {
		t.Fatalf("changed secret: %v", err)
	}
	if len(rec.calls) != 0 || s.secretData(t) != ciliumSecret("9") {
		t.Error("a refused run changed something")
	}
}

// From key id 15 the next is 1.
func TestCiliumIPsecWraps(t *testing.T) {
	ctx := context.Background()
	s := ciliumStore(t, ciliumIPsecSpec, ciliumSecret("15+"))
	c, err := s.RotateCiliumIPsecKey(ctx, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.OldSPI != 15 || c.NewSPI != 1 || !strings.HasPrefix(s.secretData(t), "keys: 1+ rfc4106(gcm(aes)) ") {
		t.Errorf("%s", c)
	}
	noCiliumKey(t, "the change", c.String())
}

// Bad input is one line naming the object and the fix; nothing changes.
func TestCiliumIPsecRefuses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, spec, secret, want string }{
		{"no secret", ciliumIPsecSpec, "", "cluster test.example.com has no ciliumpassword secret: create one with `kops create secret ciliumpassword -f FILE`"},
		{"malformed", ciliumIPsecSpec, "keys: 0 rfc4106(gcm(aes)) " + ciliumKey + " 128\n", "secret ciliumpassword of cluster test.example.com: the Cilium IPsec key id 0 is out of range"},
		{"not yaml", ciliumIPsecSpec, "keys: [" + ciliumKey + "\n", "secret ciliumpassword of cluster test.example.com: it is not a YAML document"},
		{"no cilium", "  networking:\n    calico: {}\n", ciliumSecret("3+"), "cluster test.example.com does not use Cilium (spec.networking.cilium is not set)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ciliumStore(t, tc.spec, tc.secret)
			rec := &recorder{}
			for _, yes := range []bool{false, true} {
				_, err := s.RunCiliumIPsecRotation(ctx, CiliumIPsecOptions{Yes: yes, Runner: rec.run})
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("yes=%t: %v, want one line with %q", yes, err, tc.want)
				}
				noCiliumKey(t, "the error", err.Error())
			}
			if _, err := s.RotateCiliumIPsecKey(ctx, time.Now(), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("rotate: %v", err)
			}
			if len(rec.calls) != 0 || s.recordBytes(t) != "" {
				t.Error("a refused run changed something")
			}
		})
	}
}

// Cilium without IPsec encryption: rotated, with a note.
func TestCiliumIPsecNoteWithoutEncryption(t *testing.T) {
	s := ciliumStore(t, "  networking:\n    cilium: {}\n", ciliumSecret("1+"))
	p, err := s.CiliumIPsecStatus(context.Background())
	if err != nil || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "does not encrypt with Cilium IPsec") {
		t.Errorf("%+v %v", p, err)
	}
}

// The kops CLI's version is checked before anything is written.
func TestCiliumIPsecKopsVersion(t *testing.T) {
	ctx := context.Background()
	s := ciliumStore(t, ciliumIPsecSpec, ciliumSecret("3+"))
	base, _ := registry.ConfigBase(s.vfsContext, s.cluster)
	if err := base.Join(registry.PathKopsVersionUpdated).WriteFile(ctx, strings.NewReader("1.36.2"), nil); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	_, err := s.RunCiliumIPsecRotation(ctx, CiliumIPsecOptions{Yes: true, Runner: rec.run, KopsVersion: func(context.Context) (string, error) { return "1.35.0", nil }})
	if err == nil || !strings.Contains(err.Error(), "older than 1.36.2") {
		t.Fatalf("old kops: %v", err)
	}
	if len(rec.calls) != 0 || s.secretData(t) != ciliumSecret("3+") || s.recordBytes(t) != "" {
		t.Error("a refused run changed something")
	}
	_, err = s.RunCiliumIPsecRotation(ctx, CiliumIPsecOptions{Yes: true, Runner: rec.run, KopsVersion: func(context.Context) (string, error) { return "", errors.New("the kops CLI is not on PATH") }})
	if err == nil || len(rec.calls) != 0 {
		t.Errorf("no kops: %v", err)
	}
}
