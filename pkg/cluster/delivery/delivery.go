// Package delivery hands a token over exactly once: to a new file (mode
// 0600) or to a key of another Secret, never to the terminal, and takes it
// back when the value it belongs with could not be put in place. Secret
// rotation (--hashed --deliver) and plans (secret.hashed.deliver) deliver
// through it.
package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
)

// Target is where a token goes: a new file, or a key of a Secret in
// Namespace.
type Target struct {
	Path        string
	Namespace   string
	Secret, Key string
}

func (t Target) String() string {
	if t.Path != "" {
		return "file " + t.Path
	}
	return "secret/" + t.Secret + " key " + t.Key
}

// Check refuses a target that cannot take the token: a file that exists
// already (the token goes to a new file only), or the Secret holding the
// token's hash.
func (t Target) Check(hashSecret string) error {
	if t.Path != "" {
		if _, err := os.Lstat(t.Path); err == nil {
			return fmt.Errorf("%s already exists: the token goes to a new file only; remove it or choose another path", t.Path)
		}
		return nil
	}
	if t.Secret == hashSecret {
		return fmt.Errorf("the token must go to another Secret than secret/%s, which holds its hash", t.Secret)
	}
	return nil
}

// Delivered is what Deliver did, for TakeBack.
type Delivered struct {
	t             Target
	wroteFile     bool
	createdSecret bool
	changed       bool
	previous      []byte
	hadPrevious   bool
}

// Deliver writes token to t. A Secret key that holds the token already is
// left as it is (a resumed run delivers the same token); a Secret that
// changed since it was read is not written (resourceVersion).
func Deliver(ctx context.Context, kc kubernetes.Interface, t Target, token []byte) (*Delivered, error) {
	d := &Delivered{t: t}
	if t.Path != "" {
		f, err := os.OpenFile(t.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("delivering the token: creating %s: %w", t.Path, errors.Unwrap(err))
		}
		_, werr := f.Write(append(append([]byte{}, token...), '\n'))
		cerr := f.Close()
		if werr != nil || cerr != nil {
			os.Remove(t.Path)
			return nil, fmt.Errorf("delivering the token: writing %s failed", t.Path)
		}
		d.wroteFile = true
		return d, nil
	}
	secrets := kc.CoreV1().Secrets(t.Namespace)
	s, err := secrets.Get(ctx, t.Secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: t.Secret, Namespace: t.Namespace,
				Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedBy}},
			Data: map[string][]byte{t.Key: token},
		}, metav1.CreateOptions{FieldManager: consumers.FieldManager})
		if err != nil {
			return nil, fmt.Errorf("delivering the token: creating secret/%s: %w", t.Secret, err)
		}
		d.createdSecret = true
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("delivering the token: reading secret/%s: %w", t.Secret, err)
	}
	if bytes.Equal(s.Data[t.Key], token) {
		return d, nil
	}
	d.previous, d.hadPrevious = s.Data[t.Key]
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[t.Key] = token
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: consumers.FieldManager}); err != nil {
		if apierrors.IsConflict(err) {
			return nil, fmt.Errorf("delivering the token: secret/%s changed while the token was being written: nothing was changed; re-run the command", t.Secret)
		}
		return nil, fmt.Errorf("delivering the token: writing secret/%s: %w", t.Secret, err)
	}
	d.changed = true
	return d, nil
}

// TakeBack undoes Deliver after the token's hash could not be put in
// place, and says so on errOut.
func (d *Delivered) TakeBack(ctx context.Context, kc kubernetes.Interface, errOut io.Writer) {
	t := d.t
	if d.wroteFile {
		if err := os.Remove(t.Path); err == nil {
			fmt.Fprintf(errOut, "removed %s: its token was never put in effect\n", t.Path)
		}
		return
	}
	secrets := kc.CoreV1().Secrets(t.Namespace)
	if d.createdSecret {
		_ = secrets.Delete(ctx, t.Secret, metav1.DeleteOptions{})
		return
	}
	if !d.changed {
		return
	}
	s, err := secrets.Get(ctx, t.Secret, metav1.GetOptions{})
	if err != nil {
		return
	}
	if d.hadPrevious {
		s.Data[t.Key] = d.previous
	} else {
		delete(s.Data, t.Key)
	}
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: consumers.FieldManager}); err == nil {
		fmt.Fprintf(errOut, "restored secret/%s key %s: the new token was never put in effect\n", t.Secret, t.Key)
	}
}
