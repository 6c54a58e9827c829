package encryption

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// secretData is what the fake server stores in the Secret k: a PUT must
// carry it back as it was listed.
func secretData(k string) map[string][]byte {
	return map[string][]byte{"password": []byte("value of " + k)}
}

// rest serves the fake server as kube-apiserver does in protobuf, with
// client-go's own protobuf serializer: the resource's list (pages,
// continue tokens, an expired token's 410), a PUT that stores an object
// at its listed resourceVersion (409, 404 otherwise), errors as protobuf
// Status objects. The probe for protobuf (Accept protobuf or JSON) is
// answered without listing; a resource outside the core group answers it
// in JSON, as kube-apiserver does for a custom resource.
func (s *fakeServer) rest(t *testing.T) rest.Interface {
	ser := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	enc := scheme.Codecs.EncoderForVersion(ser, corev1.SchemeGroupVersion)
	bad := func(format string, args ...any) {
		s.mu.Lock()
		s.badPatch = fmt.Errorf(format, args...)
		s.mu.Unlock()
	}
	write := func(w http.ResponseWriter, code int, obj runtime.Object) {
		b, err := runtime.Encode(enc, obj)
		if err != nil {
			bad("encoding the answer: %v", err)
		}
		w.Header().Set("Content-Type", protobufType)
		w.WriteHeader(code)
		_, _ = w.Write(b)
	}
	fail := func(w http.ResponseWriter, err error) {
		var st apierrors.APIStatus
		if !errors.As(err, &st) {
			st = apierrors.NewInternalError(err)
		}
		status := st.Status()
		write(w, int(status.Code), &status)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.Header.Get("Accept") == protobufOrJSON:
			if s.res.GVR.Group != "" {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"kind":"ThingList","apiVersion":"example.com/v1","metadata":{},"items":[]}`)
				return
			}
			write(w, http.StatusOK, &corev1.SecretList{})
		case r.Method == http.MethodGet:
			if r.URL.Path != apiPath(s.res, "", "") || r.Header.Get("Accept") != protobufType {
				bad("list %s (Accept %s)", r.URL.Path, r.Header.Get("Accept"))
			}
			q := r.URL.Query()
			limit, _ := strconv.ParseInt(q.Get("limit"), 10, 64)
			keys, rvs, cont, err := s.page(metav1.ListOptions{Limit: limit, Continue: q.Get("continue")})
			if err != nil {
				fail(w, err)
				return
			}
			l := &corev1.SecretList{ListMeta: metav1.ListMeta{Continue: cont}}
			for i, k := range keys {
				ns, name := s.split(k)
				l.Items = append(l.Items, corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rvs[i], UID: types.UID("uid-" + k), Labels: map[string]string{"app": "a"}},
					Type:       corev1.SecretTypeOpaque, Data: secretData(k),
				})
			}
			write(w, http.StatusOK, l)
		case r.Method == http.MethodPut:
			if r.Header.Get("Content-Type") != protobufType || r.Header.Get("Accept") != putAnswer {
				bad("PUT with Content-Type %s, Accept %s", r.Header.Get("Content-Type"), r.Header.Get("Accept"))
			}
			body, _ := io.ReadAll(r.Body)
			obj, gvk, err := ser.Decode(body, nil, nil)
			sec, ok := obj.(*corev1.Secret)
			if err != nil || !ok || gvk.Kind != "Secret" {
				bad("PUT body: %v (%v, %T)", err, gvk, obj)
				fail(w, apierrors.NewBadRequest("not a Secret"))
				return
			}
			k := sec.Namespace + "/" + sec.Name
			if r.URL.Path != apiPath(s.res, sec.Namespace, sec.Name) || sec.UID != types.UID("uid-"+k) ||
				!bytes.Equal(sec.Data["password"], secretData(k)["password"]) || sec.Labels["app"] != "a" {
				bad("PUT %s: not the object as listed", r.URL.Path)
			}
			rv, err := s.store("put", k, sec.ResourceVersion)
			if err != nil {
				fail(w, err)
				return
			}
			write(w, http.StatusOK, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sec.Namespace, Name: sec.Name, ResourceVersion: rv}})
		default:
			bad("unexpected %s %s", r.Method, r.URL)
			http.Error(w, "unexpected", http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(srv.Close)
	kc, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return kc.CoreV1().RESTClient()
}

func TestParseListRefusesWhatIsNotAProtobufList(t *testing.T) {
	ser := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	encode := func(obj runtime.Object) []byte {
		b, err := runtime.Encode(scheme.Codecs.EncoderForVersion(ser, corev1.SchemeGroupVersion), obj)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	list := encode(&corev1.SecretList{Items: []corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: "7"}}}})
	tests := []struct {
		name, wantErr string
		body          []byte
	}{
		{"JSON", "no protobuf prefix", []byte(`{"kind":"SecretList"}`)},
		{"an object, not a list", `kind "Secret" is not a list`, encode(&corev1.Secret{})},
		{"truncated", "unexpected EOF", list[:len(list)-3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseList(tt.body); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	l, err := parseList(list)
	if err != nil || len(l.items) != 1 || l.items[0].name != "a" || l.items[0].resourceVersion != "7" || l.kind != "Secret" || l.apiVersion != "v1" {
		t.Errorf("parsed %+v (%v), want one Secret a at resourceVersion 7", l, err)
	}
}
