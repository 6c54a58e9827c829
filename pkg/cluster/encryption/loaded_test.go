package encryption

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

// The metric lines as kube-apiserver v1.36 writes them
// (k8s.io/apiserver pkg/server/options/encryptionconfig/metrics).
func TestConfigInfo(t *testing.T) {
	file := []byte("apiVersion: apiserver.config.k8s.io/v1\n")
	id := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("apiserver-abc")))
	metrics := "# HELP apiserver_encryption_config_controller_last_config_info [ALPHA] Information about the last applied encryption configuration with hash as label, split by apiserver identity.\n" +
		"# TYPE apiserver_encryption_config_controller_last_config_info gauge\n" +
		`apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="` + id + `",hash="` + ConfigHash(file) + `"} 1` + "\n" +
		`apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:other",hash="sha256:old"} 0` + "\n" +
		`apiserver_request_total{code="200"} 7` + "\n"
	got := configInfo([]byte(metrics))
	if len(got) != 1 || got[id] != ConfigHash(file) {
		t.Errorf("configInfo = %v", got)
	}
	if ConfigHash(file) != fmt.Sprintf("sha256:%x", sha256.Sum256(file)) {
		t.Error("ConfigHash is not the apiserver's sha256 of the file")
	}
}
