package drift_test

import (
	"encoding/base64"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The subset of the Kubernetes API the manifests use.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec       yaml.Node         `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

type kustomization struct {
	Kind      string   `yaml:"kind"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name string `yaml:"name"`
	} `yaml:"images"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type deploymentSpec struct {
	Replicas int           `yaml:"replicas"`
	Selector labelSelector `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec podSpec `yaml:"spec"`
	} `yaml:"template"`
}

type podSpec struct {
	AutomountServiceAccountToken  *bool           `yaml:"automountServiceAccountToken"`
	EnableServiceLinks            *bool           `yaml:"enableServiceLinks"`
	TerminationGracePeriodSeconds *int64          `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               securityContext `yaml:"securityContext"`
	TopologySpreadConstraints     []struct {
		TopologyKey   string        `yaml:"topologyKey"`
		LabelSelector labelSelector `yaml:"labelSelector"`
	} `yaml:"topologySpreadConstraints"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string `yaml:"name"`
			Items []struct {
				Key  string `yaml:"key"`
				Path string `yaml:"path"`
			} `yaml:"items"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type securityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	Capabilities             struct {
		Add  []string `yaml:"add"`
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
	SeccompProfile struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type container struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string     `yaml:"name"`
		Value     string     `yaml:"value"`
		ValueFrom *yaml.Node `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	StartupProbe   *probe `yaml:"startupProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int64 `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext securityContext `yaml:"securityContext"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port str    `yaml:"port"`
	} `yaml:"httpGet"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string `yaml:"name"`
		TargetPort str    `yaml:"targetPort"`
	} `yaml:"ports"`
}

type pdbSpec struct {
	Selector labelSelector `yaml:"selector"`
}

// manifests is deploy/kubernetes with what the checks derive from it.
type manifests struct {
	files   []string // the manifests besides kustomization.yaml
	objects []k8sObject
	kust    kustomization
	deploy  deploymentSpec
	pod     podSpec
	ctr     container         // llmproxy's
	env     map[string]string // its environment: envFrom, then env
	secrets map[string]map[string]string
	img     image
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{img: readImage(t), secrets: map[string]map[string]string{}, env: map[string]string{}}
	paths, _ := filepath.Glob(filepath.Join(k8sDir, "*.y*ml"))
	for _, p := range paths {
		base := filepath.Base(p)
		if base == "kustomization.yaml" || base == "kustomization.yml" {
			docs := decodeAll[kustomization](t, p)
			if len(docs) != 1 || docs[0].Kind != "Kustomization" {
				t.Fatalf("%s is not one Kustomization", p)
			}
			m.kust = docs[0]
			continue
		}
		m.files = append(m.files, base)
		m.objects = append(m.objects, decodeAll[k8sObject](t, p)...)
	}
	var deployments []k8sObject
	for _, o := range m.objects {
		switch o.Kind {
		case "Deployment":
			deployments = append(deployments, o)
		case "Secret":
			vals := maps.Clone(o.StringData)
			if vals == nil {
				vals = map[string]string{}
			}
			for k, b64 := range o.Data {
				raw, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					t.Fatalf("Secret %s: data.%s is not base64", o.Metadata.Name, k)
				}
				vals[k] = string(raw)
			}
			m.secrets[o.Metadata.Name] = vals
		}
	}
	if len(deployments) != 1 {
		t.Fatalf("%d Deployments in %s, want llmproxy's alone", len(deployments), k8sDir)
	}
	decodeSpec(t, deployments[0], &m.deploy)
	m.pod = m.deploy.Template.Spec
	if len(m.pod.Containers) != 1 {
		t.Fatalf("the pod has %d containers, want llmproxy alone", len(m.pod.Containers))
	}
	m.ctr = m.pod.Containers[0]
	for _, ef := range m.ctr.EnvFrom {
		if ef.SecretRef == nil {
			t.Fatal("envFrom other than a Secret")
		}
		vals, ok := m.secrets[ef.SecretRef.Name]
		if !ok {
			t.Fatalf("envFrom names Secret %s, which no manifest defines", ef.SecretRef.Name)
		}
		maps.Copy(m.env, vals)
	}
	for _, e := range m.ctr.Env {
		m.env[e.Name] = e.Value // env beats envFrom
	}
	return m
}

func decodeSpec(t *testing.T, o k8sObject, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Metadata.Name, err)
	}
}

func (m manifests) all(kind string) []k8sObject {
	var out []k8sObject
	for _, o := range m.objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// config is the configuration the pod reads at LLMPROXY_CONFIG: a
// ConfigMap key mounted there, loaded and validated as llmproxy does.
func (m manifests) config(t *testing.T) mounted {
	t.Helper()
	path := m.env["LLMPROXY_CONFIG"]
	if path == "" {
		t.Fatal("LLMPROXY_CONFIG is not set: llmproxy would run on its defaults")
	}
	for _, vm := range m.ctr.VolumeMounts {
		key, ok := strings.CutPrefix(path, vm.MountPath+"/")
		if vm.SubPath != "" {
			key, ok = vm.SubPath, path == vm.MountPath
		}
		if !ok {
			continue
		}
		if !vm.ReadOnly {
			t.Errorf("the config is mounted writable at %s", vm.MountPath)
		}
		for _, v := range m.pod.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			for _, it := range v.ConfigMap.Items {
				if it.Path == key {
					key = it.Key
				}
			}
			for _, cm := range m.all("ConfigMap") {
				if cm.Metadata.Name == v.ConfigMap.Name {
					text, ok := cm.Data[key]
					if !ok {
						t.Fatalf("ConfigMap %s has no key %s", cm.Metadata.Name, key)
					}
					return loadConfig(t, "ConfigMap "+cm.Metadata.Name+" "+key, text)
				}
			}
			t.Fatalf("volume %s names ConfigMap %s, which no manifest defines", v.Name, v.ConfigMap.Name)
		}
	}
	t.Fatalf("no ConfigMap is mounted at LLMPROXY_CONFIG=%s", path)
	return mounted{}
}

// listenPort is the port llmproxy listens on in the pod; the config file
// must agree with the variables that override it.
func (m manifests) listenPort(t *testing.T) int {
	t.Helper()
	cfg := m.config(t).cfg
	eff := effective("LLMPROXY_LISTEN", m.env, m.img, cfg.Listen)
	if port(t, eff) != port(t, cfg.Listen) {
		t.Errorf("llmproxy listens on %s (LLMPROXY_LISTEN), but the ConfigMap says listen: %s", eff, cfg.Listen)
	}
	return port(t, eff)
}

// containerPort resolves a port by name or number to a container port; 0
// when it names none.
func (m manifests) containerPort(p str) int {
	for _, cp := range m.ctr.Ports {
		if cp.Name == string(p) || itoa(cp.ContainerPort) == string(p) {
			return cp.ContainerPort
		}
	}
	return 0
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKustomizationListsEveryManifest: kubectl apply -k applies what the
// kustomization lists, so a manifest left out is silently not deployed.
func TestKustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	listed := slices.Sorted(slices.Values(m.kust.Resources))
	files := slices.Sorted(slices.Values(m.files))
	if !slices.Equal(listed, files) {
		t.Errorf("kustomization.yaml lists %v; the directory holds %v", listed, files)
	}
	// The Deployment's image is one the kustomization can point at a
	// registry (kustomize edit set image); another name would be pulled
	// as written.
	var names []string
	for _, im := range m.kust.Images {
		names = append(names, im.Name)
	}
	if name, _, _ := strings.Cut(m.ctr.Image, ":"); !slices.Contains(names, name) {
		t.Errorf("image %s is not among the kustomization's images %v", m.ctr.Image, names)
	}
}

// TestKubernetesPorts: three replicas; the probes ask /health on the port
// llmproxy listens on, which the container declares and the Service
// targets; every selector finds the pods.
func TestKubernetesPorts(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	if m.deploy.Replicas != 3 {
		t.Errorf("replicas: %d, want 3", m.deploy.Replicas)
	}
	listen := m.listenPort(t)
	if m.containerPort(str(itoa(listen))) == 0 {
		t.Errorf("no containerPort %d, where llmproxy listens", listen)
	}
	probes := map[string]*probe{"readiness": m.ctr.ReadinessProbe, "liveness": m.ctr.LivenessProbe, "startup": m.ctr.StartupProbe}
	for name, p := range probes {
		switch {
		case p == nil && name == "startup":
		case p == nil || p.HTTPGet == nil:
			t.Errorf("no %s probe on /health", name)
		case p.HTTPGet.Path != "/health":
			t.Errorf("the %s probe asks %s, want /health", name, p.HTTPGet.Path)
		case m.containerPort(p.HTTPGet.Port) != listen:
			t.Errorf("the %s probe asks port %s, llmproxy listens on %d", name, p.HTTPGet.Port, listen)
		}
	}
	labels := m.deploy.Template.Metadata.Labels
	if !subset(m.deploy.Selector.MatchLabels, labels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", m.deploy.Selector.MatchLabels, labels)
	}
	services := m.all("Service")
	if len(services) == 0 {
		t.Error("no Service")
	}
	for _, o := range services {
		var s serviceSpec
		decodeSpec(t, o, &s)
		if !subset(s.Selector, labels) {
			t.Errorf("Service %s selects %v, not the pods %v", o.Metadata.Name, s.Selector, labels)
		}
		for _, p := range s.Ports {
			if m.containerPort(p.TargetPort) != listen {
				t.Errorf("Service %s port %s targets %s, llmproxy listens on %d", o.Metadata.Name, p.Name, p.TargetPort, listen)
			}
		}
	}
	pdbs := m.all("PodDisruptionBudget")
	if len(pdbs) == 0 {
		t.Error("no PodDisruptionBudget")
	}
	for _, o := range pdbs {
		var s pdbSpec
		decodeSpec(t, o, &s)
		if !subset(s.Selector.MatchLabels, labels) {
			t.Errorf("PodDisruptionBudget %s selects %v, not the pods %v", o.Metadata.Name, s.Selector.MatchLabels, labels)
		}
	}
	if len(m.pod.TopologySpreadConstraints) == 0 {
		t.Error("no topologySpreadConstraints: the replicas may share one node")
	}
	for _, c := range m.pod.TopologySpreadConstraints {
		if !subset(c.LabelSelector.MatchLabels, labels) {
			t.Errorf("the spread over %s counts %v, not the pods %v", c.TopologyKey, c.LabelSelector.MatchLabels, labels)
		}
	}
}

// TestKubernetesTermination: SIGKILL comes terminationGracePeriodSeconds
// after the pod starts terminating, preStop hook included; llmproxy needs
// the hook's sleep plus timeouts.shutdown of the config it mounts.
func TestKubernetesTermination(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	shutdown := m.config(t).cfg.Timeouts.Shutdown
	pre := m.ctr.Lifecycle.PreStop
	if pre == nil || pre.Sleep == nil || pre.Sleep.Seconds <= 0 {
		t.Fatal("no preStop sleep: the endpoints may still send to a pod that closed its listener")
	}
	sleep := time.Duration(pre.Sleep.Seconds) * time.Second
	if m.pod.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds (the default, 30s, is not longer than the drain)")
	}
	grace := time.Duration(*m.pod.TerminationGracePeriodSeconds) * time.Second
	if grace <= sleep+shutdown {
		t.Errorf("terminationGracePeriodSeconds %s is not longer than the preStop sleep %s plus timeouts.shutdown %s", grace, sleep, shutdown)
	}
}

func isTrue(b *bool) bool  { return b != nil && *b }
func isFalse(b *bool) bool { return b != nil && !*b }

// TestKubernetesSecurity: the pod runs as the image's non-root user with
// a read-only root, no capability, no privilege to gain, the runtime's
// seccomp profile, sized resources, and nothing Kubernetes would inject
// into llmproxy's own LLMPROXY_* variables.
func TestKubernetesSecurity(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	pod, ctr := m.pod.SecurityContext, m.ctr.SecurityContext
	if !isTrue(ctr.RunAsNonRoot) && !isTrue(pod.RunAsNonRoot) {
		t.Error("runAsNonRoot is not set")
	}
	for _, u := range []*int64{pod.RunAsUser, ctr.RunAsUser} {
		if u != nil && *u == 0 {
			t.Error("runAsUser: 0")
		}
	}
	if !isTrue(ctr.ReadOnlyRootFilesystem) {
		t.Error("readOnlyRootFilesystem is not set")
	}
	if !isFalse(ctr.AllowPrivilegeEscalation) {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if !slices.Contains(ctr.Capabilities.Drop, "ALL") || len(ctr.Capabilities.Add) > 0 {
		t.Errorf("capabilities: drop %v, add %v; want drop [ALL]", ctr.Capabilities.Drop, ctr.Capabilities.Add)
	}
	if ctr.SeccompProfile.Type != "RuntimeDefault" && (ctr.SeccompProfile.Type != "" || pod.SeccompProfile.Type != "RuntimeDefault") {
		t.Error("seccompProfile is not RuntimeDefault")
	}
	if !isFalse(m.pod.AutomountServiceAccountToken) {
		t.Error("automountServiceAccountToken is not false: llmproxy would get an API token it never uses")
	}

	// With a read-only root, the data dir must be a volume.
	if isTrue(ctr.ReadOnlyRootFilesystem) {
		dir := effective("LLMPROXY_DATA_DIR", m.env, m.img, m.config(t).cfg.DataDir)
		found := false
		for _, vm := range m.ctr.VolumeMounts {
			found = found || vm.MountPath == dir && !vm.ReadOnly
		}
		if !found {
			t.Errorf("the data dir %s is on the read-only root", dir)
		}
	}

	// Service links: a Service named llmproxy would add LLMPROXY_PORT,
	// LLMPROXY_SERVICE_HOST, … to the container.
	if !isFalse(m.pod.EnableServiceLinks) {
		known := llmproxyEnv(t)
		for _, s := range m.all("Service") {
			prefix := strings.ToUpper(strings.ReplaceAll(s.Metadata.Name, "-", "_")) + "_"
			for _, v := range []string{"SERVICE_HOST", "SERVICE_PORT", "PORT"} {
				if name := prefix + v; strings.HasPrefix(name, "LLMPROXY_") && known[name] == "" {
					t.Errorf("enableServiceLinks is not false: Service %s injects %s, a variable in llmproxy's namespace that it does not read", s.Metadata.Name, name)
				}
			}
		}
	}

	res := m.ctr.Resources
	for _, r := range []string{"cpu", "memory"} {
		req, err := parseQuantity(res.Requests[r])
		if err != nil {
			t.Errorf("requests.%s: %v", r, err)
			continue
		}
		if lim, ok := res.Limits[r]; ok {
			if l, err := parseQuantity(lim); err != nil || l < req {
				t.Errorf("limits.%s %s is below requests.%s %s (or unreadable: %v)", r, lim, r, res.Requests[r], err)
			}
		}
	}
	memLimit, err := parseQuantity(res.Limits["memory"])
	if err != nil {
		t.Fatalf("limits.memory: %v", err)
	}
	if v := m.env["GOMEMLIMIT"]; v != "" {
		if n, err := parseGoMemLimit(v); err != nil || n*1000 >= memLimit {
			t.Errorf("GOMEMLIMIT %s is not below limits.memory %s (or unreadable: %v): the GC would not act before the OOM kill", v, res.Limits["memory"], err)
		}
	}
}

// TestKubernetesEnvironment: the pod is given only variables llmproxy (or
// the Go runtime) reads, every key its config names, the shared-state
// URLs, and its secrets only from a Secret.
func TestKubernetesEnvironment(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	known := llmproxyEnv(t)
	refs := m.config(t).envRefs(t)
	for name := range m.env {
		if known[name] == "" && !goRuntimeEnv[name] && !slices.Contains(refs, name) {
			t.Errorf("llmproxy reads no %s (not in cmd/llmproxy/flags.go's settings, nor a Getenv, nor an env: of its config)", name)
		}
	}
	for _, name := range append([]string{"LLMPROXY_REDIS_URL", "LLMPROXY_DATABASE_URL"}, refs...) {
		if _, ok := m.env[name]; !ok {
			t.Errorf("%s is not given to the pod", name)
		}
	}
	for _, e := range m.ctr.Env {
		if e.ValueFrom == nil && secretName(e.Name) {
			t.Errorf("env %s is written in the Deployment; it belongs in the Secret", e.Name)
		}
		if looksLikeKey(e.Value) {
			t.Errorf("env %s holds what looks like a key", e.Name)
		}
	}
}

// TestKubernetesSecretPlaceholders: every value of the Secrets is one
// llmproxy refuses as it stands, and none looks like a real key.
func TestKubernetesSecretPlaceholders(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	cfg := m.config(t)
	if len(m.secrets) == 0 {
		t.Fatal("no Secret")
	}
	for name, vals := range m.secrets {
		for k, v := range vals {
			if refusal(t, k, v, cfg, nil) == "" {
				// Not the value: it may be a real one.
				t.Errorf("Secret %s: %s would be accepted: applied as it is, llmproxy would start with it", name, k)
			}
			if looksLikeKey(v) {
				t.Errorf("Secret %s: %s holds what looks like a real key", name, k)
			}
		}
	}
}
