package delivery

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestDeliverAndTakeBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tt := range []struct {
		name     string
		existing map[string][]byte // the target Secret's data before; nil: no Secret
		target   Target
	}{
		{"new file", nil, Target{Path: filepath.Join(dir, "token")}},
		{"new Secret", nil, Target{Namespace: "ns", Secret: "client", Key: "API_KEY"}},
		{"key of a Secret", map[string][]byte{"API_KEY": []byte("old"), "OTHER": []byte("x")}, Target{Namespace: "ns", Secret: "client", Key: "API_KEY"}},
		{"new key of a Secret", map[string][]byte{"OTHER": []byte("x")}, Target{Namespace: "ns", Secret: "client", Key: "API_KEY"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kc := fake.NewClientset()
			if tt.existing != nil {
				kc = fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "ns"}, Data: tt.existing})
			}
			token := []byte("tok-" + tt.name)
			d, err := Deliver(ctx, kc, tt.target, token)
			if err != nil {
				t.Fatal(err)
			}
			read := func() ([]byte, bool) {
				if tt.target.Path != "" {
					b, err := os.ReadFile(tt.target.Path)
					return bytes.TrimSuffix(b, []byte("\n")), err == nil
				}
				s, err := kc.CoreV1().Secrets("ns").Get(ctx, "client", metav1.GetOptions{})
				if err != nil {
					return nil, false
				}
				v, ok := s.Data[tt.target.Key]
				return v, ok
			}
			if got, _ := read(); !bytes.Equal(got, token) {
				t.Fatalf("delivered %q", got)
			}
			if tt.target.Path != "" {
				if fi, _ := os.Stat(tt.target.Path); fi.Mode().Perm() != 0o600 {
					t.Errorf("file mode %v", fi.Mode().Perm())
				}
			}
			// A resumed run delivers the same token again: nothing changes.
			if tt.target.Path == "" {
				again, err := Deliver(ctx, kc, tt.target, token)
				if err != nil || again.changed {
					t.Errorf("second delivery of the same token: %v, changed %v", err, again.changed)
				}
			}
			var msg bytes.Buffer
			d.TakeBack(ctx, kc, &msg)
			got, ok := read()
			switch {
			case tt.existing == nil && ok:
				t.Errorf("take back left the token at %s", tt.target)
			case tt.existing != nil && !bytes.Equal(got, tt.existing[tt.target.Key]):
				t.Errorf("take back: %q, want the previous %q", got, tt.existing[tt.target.Key])
			}
			if strings.Contains(msg.String(), string(token)) {
				t.Error("take back printed the token")
			}
		})
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	os.WriteFile(exists, nil, 0o600)
	for _, tt := range []struct {
		t    Target
		want string
	}{
		{Target{Path: exists}, "already exists: the token goes to a new file only"},
		{Target{Secret: "server", Key: "X"}, "the token must go to another Secret than secret/server, which holds its hash"},
		{Target{Path: filepath.Join(dir, "new")}, ""},
		{Target{Secret: "client", Key: "X"}, ""},
	} {
		err := tt.t.Check("server")
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.t, err, tt.want)
		}
	}
}
