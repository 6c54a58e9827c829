// Package keystore holds where a key set lives: one key of a Secret, or a
// local file (Slurm's, or a checked-out file the Action proposes), with
// the per-kid records beside it. The set itself is the pure model in
// model/jwks.
package keystore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// Store is where a key set lives.
type Store interface {
	// Load reads the set and the records. missingOK lets `add` start an
	// empty set where there is none yet.
	Load(ctx context.Context, missingOK bool) (*jwks.Set, jwks.Records, error)
	// Save writes the set and records, guarded against concurrent changes
	// since Load. action and by go into the Secret's history.
	Save(ctx context.Context, s *jwks.Set, r jwks.Records, action, by string) error
	// String names the store for messages: secret/NAME key K, or a path.
	String() string
}

// SecretStore keeps the set in one key of a Secret.
type SecretStore struct {
	Client          kubernetes.Interface
	Namespace, Name string
	Key             string
	// DryRun: "All" for a server dry run.
	DryRun []string

	read *corev1.Secret
}

func (st *SecretStore) String() string { return fmt.Sprintf("secret/%s key %s", st.Name, st.Key) }

// Load reads the Secret.
func (st *SecretStore) Load(ctx context.Context, missingOK bool) (*jwks.Set, jwks.Records, error) {
	s, err := st.Client.CoreV1().Secrets(st.Namespace).Get(ctx, st.Name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("secret/%s not found in namespace %s: check the name and -n/--namespace", st.Name, st.Namespace)
		}
		return nil, nil, fmt.Errorf("reading secret/%s in namespace %s: %w", st.Name, st.Namespace, err)
	}
	st.read = s
	data, ok := s.Data[st.Key]
	if !ok && !missingOK {
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, nil, fmt.Errorf("secret/%s has no key %q (keys: %s): pass --key with the key holding the JWKS", st.Name, st.Key, strings.Join(keys, ", "))
	}
	set, err := jwks.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("secret/%s key %s: %w", st.Name, st.Key, err)
	}
	rec, err := jwks.ParseRecords([]byte(s.Annotations[v1alpha1.RecordsAnnotation]))
	if err != nil {
		return nil, nil, fmt.Errorf("secret/%s annotation %s: %w", st.Name, v1alpha1.RecordsAnnotation, err)
	}
	return set, rec, nil
}

// Save updates the Secret with the resourceVersion read by Load.
func (st *SecretStore) Save(ctx context.Context, set *jwks.Set, r jwks.Records, action, by string) error {
	if st.read == nil {
		return errors.New("internal: Save before Load")
	}
	if ptr.Deref(st.read.Immutable, false) {
		return fmt.Errorf("secret/%s is immutable: its key set cannot change; create a new Secret and point the workloads at it", st.Name)
	}
	data, err := set.Marshal()
	if err != nil {
		return err
	}
	recs, err := r.Marshal()
	if err != nil {
		return err
	}
	s := st.read.DeepCopy()
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[st.Key] = data
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[v1alpha1.RecordsAnnotation] = string(recs)
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[v1alpha1.JWKSKeyLabel] = "true"
	if len(validation.IsValidLabelValue(st.Key)) == 0 {
		s.Labels[v1alpha1.JWKSKeyLabel] = st.Key
	}
	gen, err := v1alpha1.GenerationOf(s.Annotations)
	if err != nil {
		return fmt.Errorf("secret/%s: %w", st.Name, err)
	}
	entry := v1alpha1.Entry{Time: metav1.NewTime(time.Now().UTC().Truncate(time.Second)), Action: action, Generation: gen + 1,
		Keys: map[string]string{st.Key: values.Fingerprint(data)}, By: by}
	if err := v1alpha1.Apply(s.Annotations, entry, v1alpha1.PhaseComplete); err != nil {
		return fmt.Errorf("secret/%s: %w", st.Name, err)
	}
	updated, err := st.Client.CoreV1().Secrets(st.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: v1alpha1.ManagedBy, DryRun: st.DryRun})
	if err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("secret/%s changed while its key set was being edited: nothing was written; re-run the command", st.Name)
		}
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("not allowed to update secret/%s in namespace %s (RBAC): %v", st.Name, st.Namespace, err)
		}
		return fmt.Errorf("writing secret/%s: %w", st.Name, err)
	}
	if len(st.DryRun) == 0 {
		st.read = updated
	}
	return nil
}

// FileStore keeps the set in a local file (offline use), with the records
// in a sidecar file PATH.kube-rotate.json. A write keeps the file's owner,
// group and mode (slurmctld runs as SlurmUser and must still read it), and
// writes through a symbolic link to its target.
type FileStore struct {
	Path string

	// info is the key file as Load found it; nil when it did not exist.
	info os.FileInfo
}

func (st *FileStore) String() string { return st.Path }

// SidecarPath is where a file's records live.
func (st *FileStore) SidecarPath() string { return st.Path + ".kube-rotate.json" }

// Load reads the file and its sidecar.
func (st *FileStore) Load(ctx context.Context, missingOK bool) (*jwks.Set, jwks.Records, error) {
	data, err := os.ReadFile(st.Path)
	if errors.Is(err, os.ErrNotExist) && missingOK {
		data = nil
	} else if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", st.Path, errors.Unwrap(err))
	}
	st.info = nil
	if fi, err := os.Stat(st.Path); err == nil {
		st.info = fi
	}
	set, err := jwks.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", st.Path, err)
	}
	side, err := os.ReadFile(st.SidecarPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("reading %s: %w", st.SidecarPath(), errors.Unwrap(err))
	}
	rec, err := jwks.ParseRecords(side)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", st.SidecarPath(), err)
	}
	return set, rec, nil
}

// OthersPermission returns the problem with a key file that others may
// read, write or enter (any "other" permission bit), or "" when there is
// none. Slurm is fatal on such a file ("key file is insecure",
// SchedMD/slurm src/plugins/auth/slurm/internal.c _check_key_permissions).
func (st *FileStore) OthersPermission() string {
	if st.info == nil || st.info.Mode().Perm()&0o007 == 0 {
		return ""
	}
	return fmt.Sprintf("%s has mode %04o: Slurm refuses a key file with any \"other\" permission bit (\"key file is insecure\"); run chmod o-rwx %s",
		st.Path, st.info.Mode().Perm(), st.Path)
}

// Save writes both files atomically (temp file + rename), each with the
// key file's owner, group and mode; a new key file gets mode 0600.
func (st *FileStore) Save(ctx context.Context, set *jwks.Set, r jwks.Records, action, by string) error {
	data, err := set.Marshal()
	if err != nil {
		return err
	}
	recs, err := r.Marshal()
	if err != nil {
		return err
	}
	path := st.Path
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	like := st.info
	if fi, err := os.Stat(path); err == nil {
		like = fi
	}
	// The sidecar first: a crash between the two leaves records for keys
	// the set does not have yet, which are ignored.
	if err := writeAtomic(st.SidecarPath(), recs, like); err != nil {
		return err
	}
	if err := writeAtomic(path, data, like); err != nil {
		return err
	}
	if fi, err := os.Stat(path); err == nil {
		st.info = fi
	}
	return nil
}

// writeAtomic writes path through a temp file in its directory, renamed
// over it, with the mode, owner and group of like (mode 0600 when nil).
func writeAtomic(path string, data []byte, like os.FileInfo) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, errors.Unwrap(err))
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	fail := func(err error) error {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	mode := os.FileMode(0o600)
	if like != nil {
		mode = like.Mode().Perm()
		if sys, ok := like.Sys().(*syscall.Stat_t); ok {
			uid, gid := int(sys.Uid), int(sys.Gid)
			if uid != os.Geteuid() || gid != os.Getegid() {
				if err := f.Chown(uid, gid); err != nil {
					return fail(fmt.Errorf("keeping its owner %d:%d: %w (run as that user or root)", uid, gid, errors.Unwrap(err)))
				}
			}
		}
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, errors.Unwrap(err))
	}
	return nil
}

// Save writes the ring r to st, after checking that the system the set is
// for would accept it (Check) and, for a Slurm key file, could read it:
// the tool never writes a set its system refuses. Nothing is written when
// it refuses.
func Save(ctx context.Context, st Store, r *jwks.Ring, action, by string) error {
	if err := r.Check(); err != nil {
		return fmt.Errorf("%s: %w", st, err)
	}
	if fs, ok := st.(*FileStore); ok && r.Layout == jwks.LayoutSlurm {
		if p := fs.OthersPermission(); p != "" {
			return errors.New(p + ", then re-run")
		}
	}
	return st.Save(ctx, r.Set, r.Records, action, by)
}
