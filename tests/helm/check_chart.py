#!/usr/bin/env python3
"""Checks of the Helm chart helm/sluice, the alert rules, the dashboard and the Dockerfile.

Run by tests/tests/helm.rs with the chart-tools venv (.tools/helm-venv, made by
scripts/setup.sh):

    .tools/helm-venv/bin/python tests/helm/check_chart.py [--sluice target/debug/sluice]

What it does:
  - Helm v4's own lint (strict) and offline render (helm-python-sdk), for the default values,
    for tests/helm/all-toggles.yaml (every optional part on) and for an external-registry,
    no-persistence variant; values that the values schema must refuse are refused;
  - every rendered manifest validated against the Kubernetes schemas (kubernetes-validate,
    strict, oldest and newest supported versions); Prometheus Operator kinds are checked for
    apiVersion, kind and shape only (no schemas for CRDs);
  - yamllint (tests/helm/yamllint.yaml) on the rendered manifests, files/alerts.yaml and the
    values files;
  - the security settings of the StatefulSet and the test pod; probes, ports, Services,
    checksum annotation, volumes; credentials only from Secrets;
  - the rendered sluice.yaml accepted by `sluice check-config` (paths of mounted files
    re-rooted in a temporary directory), and the config keys of values.schema.json compared
    with agent/src/config/model.rs;
  - files/alerts.yaml: structure, runbook texts, metric names against agent/src/metrics.rs,
    `promtool check rules` and `promtool test rules` (tests/helm/alerts_test.yaml) when
    promtool is available; the rendered PrometheusRule checked the same way;
  - files/dashboard.json: JSON, panels, metric names against agent/src/metrics.rs;
  - the Dockerfile with hadolint when available, and structurally;
  - README.md of the chart documents every value.
Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml
from yamllint import linter as yamllint_linter
from yamllint.config import YamlLintConfig

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "sluice"
HERE = ROOT / "tests" / "helm"
TOOLS_BIN = ROOT / ".tools" / "bin"
VENV_BIN = Path(sys.executable).parent

# Kubernetes versions the chart supports (Chart.yaml kubeVersion) and the newest known.
KUBE_VERSIONS = ["1.25.0", kubernetes_validate.utils.latest_version()]
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
REQUIRED_ALERTS = {
    "SluiceDown",
    "SluiceNotReady",
    "SluiceReplicationSlotWalGrowing",
    "SluiceSlotInvalidated",
    "SluiceNoCommitsWhileSourceActive",
    "SluiceKafkaTransactionFailures",
    "SluicePermanentErrors",
    "SluiceDecodeErrors",
    "SluiceFallbackValues",
}
RELEASE = "cdc"
NAMESPACE = "data"


class Checks:
    def __init__(self) -> None:
        self.ok = 0
        self.failures: list[str] = []
        self.section = ""
        self.section_ok = 0
        self.notes: set[str] = set()

    def end(self) -> None:
        if self.section:
            print(f"   {self.section_ok} checks ok", flush=True)

    def start(self, section: str) -> None:
        self.end()
        self.section = section
        self.section_ok = 0
        print(f"== {section}", flush=True)

    def check(self, cond: object, what: str) -> bool:
        if cond:
            self.ok += 1
            self.section_ok += 1
            return True
        msg = f"[{self.section}] {what}"
        self.failures.append(msg)
        print(f"FAIL {msg}", flush=True)
        return False

    def note(self, msg: str) -> None:
        if msg not in self.notes:
            self.notes.add(msg)
            print(f"note: {msg}", flush=True)


C = Checks()


# --- rendering ---------------------------------------------------------------------------


def load_yaml(path: Path):
    with open(path) as f:
        return yaml.safe_load(f)


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class Rendered:
    """One offline render: template path -> text, and the parsed documents."""

    def __init__(self, label: str, values: dict, templates: dict[str, str]):
        self.label = label
        self.values = values  # the user-supplied values (not merged)
        self.templates = templates
        self.docs: list[tuple[str, dict]] = []
        for name, text in sorted(templates.items()):
            if name.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    self.docs.append((name, doc))

    def kinds(self, kind: str) -> list[dict]:
        return [d for _, d in self.docs if d.get("kind") == kind]

    def one(self, kind: str, name: str | None = None) -> dict:
        found = [d for d in self.kinds(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.label}: expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def stream(self) -> str:
        """The manifests as `helm template` prints them."""
        out = []
        for name, text in sorted(self.templates.items()):
            if name.endswith("NOTES.txt"):
                continue
            for chunk in re.split(r"(?m)^---\s*$", text):
                if chunk.strip():
                    out.append(f"---\n# Source: {name}\n{chunk.strip(chr(10))}\n")
        return "".join(out)


def render(label: str, values: dict) -> Rendered | None:
    with helm.Chart.load(CHART) as chart:
        try:
            templates = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        except helm.HelmError as e:
            C.check(False, f"render {label}: {e}")
            return None
    C.check(True, f"render {label}")
    return Rendered(label, values, templates)


# --- lint, schema ------------------------------------------------------------------------


def check_lint(label: str, values: dict) -> None:
    for kube in ("v1.25.0", "v" + KUBE_VERSIONS[-1]):
        report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=kube)
        for m in report.get("messages", []):
            sev = m.get("severity", 0)
            line = f"{m.get('path')}: {m.get('error')}"
            if sev >= 2:
                C.check(False, f"helm lint --strict ({label}, kube {kube}): {line}")
            else:
                C.note(f"helm lint ({label}): {line}")
        C.check(not report.get("errors"), f"helm lint --strict ({label}, kube {kube}): errors {report.get('errors')}")


def check_schema_refusals() -> None:
    C.start("values.schema.json refuses bad values")
    bad = [
        ({"replicaCount": 2}, "/replicaCount"),
        ({"config": {"source": {"postgres": {"snapshot": "sometimes"}}}}, "snapshot"),
        ({"config": {"source": {"postgres": {"toast": "drop"}}}}, "toast"),
        ({"config": {"admin": {"listen": "0.0.0.0:1"}}}, "admin"),
        ({"config": {"sink": {"kafka": {"colour": "blue"}}}}, "colour"),
        ({"config": {"schema_registry": {"mode": "external"}}}, "url"),
        ({"config": {"schema_registry": {"on_incompatible": "ignore"}}}, "on_incompatible"),
        ({"config": {"sink": {"kafka": {"batch": {"max_events": 0}}}}}, "max_events"),
        ({"config": {"source": {"postgres": {"slot": "Bad-Slot"}}}}, "slot"),
        ({"terminationGracePeriodSeconds": 5}, "terminationGracePeriodSeconds"),
        ({"logFormat": "xml"}, "logFormat"),
        ({"listenAddress": "127.0.0.1"}, "listenAddress"),
        ({"ports": {"admin": "9187"}}, "admin"),
        ({"colour": "blue"}, "colour"),
    ]
    with helm.Chart.load(CHART) as chart:
        C.check(chart.schema is not None, "the chart ships values.schema.json")
        for values, key in bad:
            try:
                chart.render(values, name=RELEASE, namespace=NAMESPACE)
                C.check(False, f"values {values} rendered, expected a schema error naming {key}")
            except helm.HelmValuesError as e:
                C.check(key in str(e), f"schema error for {values} names {key}: {e}")


# --- Kubernetes schemas ------------------------------------------------------------------


def check_kube_schemas(r: Rendered) -> None:
    C.start(f"Kubernetes schemas ({r.label})")
    for template, doc in r.docs:
        kind, api = doc.get("kind"), doc.get("apiVersion")
        name = f"{template}: {kind}/{doc.get('metadata', {}).get('name')}"
        if kind in CRD_KINDS:
            C.check(api == "monitoring.coreos.com/v1", f"{name}: apiVersion {api}")
            C.check(isinstance(doc.get("spec"), dict) and doc["spec"], f"{name}: has a spec")
            C.check(doc["metadata"].get("name") and doc["metadata"].get("namespace"), f"{name}: name and namespace")
            C.note(f"{name}: CRD kind, no Kubernetes schema to validate against (shape checked below)")
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
                C.check(True, f"{name} valid for {version}")
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                C.check(False, f"{name} invalid for Kubernetes {version}: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                C.check(False, f"{name}: no schema ({e.message})")


# --- yamllint ----------------------------------------------------------------------------


def yamllint_conf() -> YamlLintConfig:
    return YamlLintConfig(file=str(HERE / "yamllint.yaml"))


def check_yamllint(label: str, text: str) -> None:
    problems = list(yamllint_linter.run(text, yamllint_conf()))
    errors = [p for p in problems if p.level == "error"]
    for p in problems:
        if p.level != "error":
            C.note(f"yamllint {label}:{p.line}:{p.column}: {p.level}: {p.message}")
    for p in errors:
        lines = text.splitlines()
        ctx = lines[p.line - 1] if 0 < p.line <= len(lines) else ""
        C.check(False, f"yamllint {label}:{p.line}:{p.column}: {p.message} [{p.rule}]  | {ctx}")
    C.check(True, f"yamllint {label}")


# --- the workload ------------------------------------------------------------------------


def config_of(r: Rendered) -> tuple[dict, str]:
    cm = r.one("ConfigMap", f"{RELEASE}-sluice")
    text = cm["data"]["sluice.yaml"]
    return yaml.safe_load(text), text


def listen(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def mount_for(container: dict, path: str) -> dict | None:
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                best = m
    return best


def check_workload(r: Rendered, merged: dict) -> None:
    C.start(f"StatefulSet, Services, security ({r.label})")
    full = f"{RELEASE}-sluice"
    sts = r.one("StatefulSet", full)
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    C.check(spec["replicas"] == 1, "one replica")
    C.check(spec["serviceName"] == f"{full}-headless", "governing headless Service")
    C.check(spec.get("updateStrategy", {}).get("type") == "RollingUpdate", "RollingUpdate (old pod stops first)")
    C.check(not r.kinds("Deployment"), "no Deployment")
    C.check(not r.kinds("Secret"), "the chart renders no Secret (credentials come from existing ones)")

    # Pod-level security.
    psc = pod.get("securityContext", {})
    C.check(psc.get("runAsNonRoot") is True, "pod runAsNonRoot")
    C.check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccomp RuntimeDefault")
    C.check(isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0, "pod runAsUser is a non-root uid")
    C.check(psc.get("fsGroup") == psc.get("runAsGroup"), "fsGroup lets the user read mounted secrets")
    C.check(pod.get("automountServiceAccountToken") is False, "pod automountServiceAccountToken false")
    if merged["serviceAccount"]["create"]:
        sa = r.one("ServiceAccount", pod["serviceAccountName"])
        C.check(sa.get("automountServiceAccountToken") is False, "ServiceAccount automountServiceAccountToken false")
    else:
        C.check(not r.kinds("ServiceAccount"), "no ServiceAccount when serviceAccount.create is false")
    tgp = pod.get("terminationGracePeriodSeconds", 30)
    C.check(tgp >= 30, f"terminationGracePeriodSeconds {tgp} >= 30 (Sluice stops within 10 s)")

    containers = pod["containers"] + pod.get("initContainers", [])
    C.check(len(pod["containers"]) == 1, "one container")
    for c in containers:
        sc = c.get("securityContext", {})
        n = c["name"]
        C.check(sc.get("readOnlyRootFilesystem") is True, f"{n}: readOnlyRootFilesystem")
        C.check(sc.get("allowPrivilegeEscalation") is False, f"{n}: allowPrivilegeEscalation false")
        C.check(sc.get("privileged") in (False, None), f"{n}: not privileged")
        C.check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{n}: drops ALL capabilities")
        C.check(not sc.get("capabilities", {}).get("add"), f"{n}: adds no capability")
        C.check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{n}: runAsNonRoot")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
        C.check(seccomp.get("type") == "RuntimeDefault", f"{n}: seccomp RuntimeDefault")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            C.check({"cpu", "memory"} <= set(res.get(kind, {})), f"{n}: resources.{kind} cpu and memory")
        for e in c.get("env", []):
            secretish = re.search(r"PASS|SECRET|TOKEN|CREDENTIAL|KEY", e["name"], re.I)
            if secretish:
                C.check("valueFrom" in e and "value" not in e, f"{n}: env {e['name']} comes from a Secret, not inline")

    c = pod["containers"][0]
    chart_meta = load_yaml(CHART / "Chart.yaml")
    image = merged["image"]
    if image.get("digest"):
        C.check(c["image"] == f"{image['repository']}@{image['digest']}", "image by digest")
    else:
        C.check(
            c["image"] == f"{image['repository']}:{image.get('tag') or chart_meta['appVersion']}",
            f"image {c['image']} = repository:tag (tag defaults to appVersion)",
        )
    C.check(c.get("args") == ["run", "--config", "/etc/sluice/sluice.yaml"], "args run --config /etc/sluice/sluice.yaml")
    C.check(not c.get("command"), "the image's entrypoint (sluice) is used")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    C.check(ports.get("admin") == merged["ports"]["admin"], f"container port admin = {merged['ports']['admin']}")
    lp, rp = c.get("livenessProbe", {}), c.get("readinessProbe", {})
    C.check(lp.get("httpGet", {}).get("path") == "/healthz", "liveness probe on /healthz")
    C.check(rp.get("httpGet", {}).get("path") == "/readyz", "readiness probe on /readyz")
    for probe in (lp, rp):
        port = probe.get("httpGet", {}).get("port")
        C.check(port in ("admin", merged["ports"]["admin"]), f"probe port {port} is the admin port")

    # Checksum annotation = sha256 of the rendered ConfigMap.
    ann = spec["template"]["metadata"].get("annotations", {})
    cm_text = r.templates["sluice/templates/configmap.yaml"]
    C.check(
        ann.get("checksum/config") == hashlib.sha256(cm_text.encode()).hexdigest(),
        "checksum/config annotation is the sha256 of the rendered ConfigMap",
    )

    # Volumes: config read-only, data on a PVC or emptyDir, secrets read-only.
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = {t["metadata"]["name"]: t for t in spec.get("volumeClaimTemplates", [])}
    for m in c.get("volumeMounts", []):
        C.check(m["name"] in volumes or m["name"] in claims, f"mount {m['name']} has a volume")
        v = volumes.get(m["name"], {})
        if "secret" in v or "configMap" in v:
            C.check(m.get("readOnly") is True, f"mount {m['name']} is read-only")
    C.check(mount_for(c, "/tmp") is not None, "/tmp is a writable volume (read-only root filesystem)")
    if merged["persistence"]["enabled"]:
        C.check("data" in claims and "data" not in volumes, "data is a volumeClaimTemplate")
        C.check(claims["data"]["spec"]["resources"]["requests"]["storage"] == merged["persistence"]["size"], "claim size")
    else:
        C.check("emptyDir" in volumes.get("data", {}), "data is an emptyDir when persistence is off")

    # The configuration the chart renders.
    cfg, _ = config_of(r)
    addr = merged["listenAddress"]
    C.check(cfg["admin"]["listen"] == listen(addr, merged["ports"]["admin"]), f"admin.listen {cfg['admin']['listen']}")
    reg = cfg.get("schema_registry", {})
    bundled = reg.get("mode", "bundled") == "bundled"
    if bundled:
        C.check(reg.get("listen") == listen(addr, merged["ports"]["registry"]), f"schema_registry.listen {reg.get('listen')}")
        C.check(ports.get("registry") == merged["ports"]["registry"], "container port registry")
        data_dir = reg.get("data_dir", "")
        C.check(data_dir.startswith("/"), f"schema_registry.data_dir {data_dir} is absolute")
        m = mount_for(c, data_dir)
        C.check(m is not None and m["name"] == "data", f"schema_registry.data_dir {data_dir} is on the data volume")
    else:
        C.check("registry" not in ports, "no registry port in external mode")
        C.check(not any(s["metadata"]["name"].endswith("-registry") for s in r.kinds("Service")), "no registry Service in external mode")
    pw = cfg.get("source", {}).get("postgres", {}).get("password_file")
    secret_name = merged["postgres"]["passwordSecret"]["name"]
    if secret_name:
        C.check(pw is not None, "password_file set from postgres.passwordSecret")
        m = mount_for(c, pw or "")
        vol = volumes.get(m["name"], {}) if m else {}
        C.check(vol.get("secret", {}).get("secretName") == secret_name, f"password_file {pw} is in the mounted Secret {secret_name}")
        items = {i["path"]: i["key"] for i in vol.get("secret", {}).get("items", [])}
        rel = os.path.relpath(pw, m["mountPath"]) if m else ""
        C.check(items.get(rel) == merged["postgres"]["passwordSecret"]["key"], "the password file is the Secret's key")
    for key, sub in (("saslSecret", "kafka-sasl"), ("tlsSecret", "kafka-tls")):
        name = merged["kafka"][key]["name"]
        if name:
            m = mount_for(c, f"/etc/sluice/secrets/{sub}/x")
            C.check(
                m is not None and volumes.get(m["name"], {}).get("secret", {}).get("secretName") == name,
                f"kafka.{key} mounted at /etc/sluice/secrets/{sub}",
            )

    # Services.
    svc = r.one("Service", full)
    sp = {p["name"]: p for p in svc["spec"]["ports"]}
    C.check(sp.get("admin", {}).get("port") == merged["ports"]["admin"], "admin Service port")
    C.check(sp.get("admin", {}).get("targetPort") == "admin", "admin Service targets the admin port")
    headless = r.one("Service", f"{full}-headless")
    C.check(headless["spec"].get("clusterIP") == "None", "headless Service")
    if bundled and merged["registryService"]["enabled"]:
        rs = r.one("Service", f"{full}-registry")
        rp_ = {p["name"]: p for p in rs["spec"]["ports"]}
        C.check(rp_.get("registry", {}).get("port") == merged["ports"]["registry"], "registry Service port")
        C.check(rs["spec"].get("publishNotReadyAddresses") is True, "registry Service serves while the pipeline is not ready")
    pod_labels = spec["template"]["metadata"]["labels"]
    for s in r.kinds("Service"):
        C.check(set(s["spec"]["selector"].items()) <= set(pod_labels.items()), f"Service {s['metadata']['name']} selects the pod")

    # helm test pod.
    tests = [d for t, d in r.docs if "/tests/" in t]
    C.check(len(tests) == 1, "one helm test pod")
    if tests:
        tp = tests[0]
        C.check(tp["metadata"]["annotations"].get("helm.sh/hook") == "test", "test pod is a helm test hook")
        script = " ".join(tp["spec"]["containers"][0].get("command", []) + tp["spec"]["containers"][0].get("args", []))
        env = {e["name"]: e.get("value", "") for e in tp["spec"]["containers"][0].get("env", [])}
        C.check("/readyz" in script and env.get("ADMIN") == f"http://{full}.{NAMESPACE}.svc:{merged['ports']['admin']}", "test calls /readyz")
        if bundled:
            C.check("/subjects" in script and f":{merged['ports']['registry']}" in env.get("REGISTRY", ""), "test calls GET /subjects")
        tsc = tp["spec"]["containers"][0].get("securityContext", {})
        C.check(tp["spec"].get("securityContext", {}).get("runAsNonRoot") is True, "test pod runAsNonRoot")
        C.check(tsc.get("readOnlyRootFilesystem") and tsc.get("allowPrivilegeEscalation") is False, "test pod locked down")
        C.check("ALL" in tsc.get("capabilities", {}).get("drop", []), "test pod drops ALL")


def check_toggles(r: Rendered, merged: dict) -> None:
    C.start(f"optional resources ({r.label})")
    full = f"{RELEASE}-sluice"
    toggles = {
        "serviceMonitor": "ServiceMonitor",
        "podMonitor": "PodMonitor",
        "prometheusRule": "PrometheusRule",
        "podDisruptionBudget": "PodDisruptionBudget",
        "networkPolicy": "NetworkPolicy",
    }
    for key, kind in toggles.items():
        n = len(r.kinds(kind))
        C.check(n == (1 if merged[key]["enabled"] else 0), f"{key}.enabled={merged[key]['enabled']}: {n} {kind}")
    dash = [d for d in r.kinds("ConfigMap") if d["metadata"]["name"] == f"{full}-dashboard"]
    C.check(len(dash) == (1 if merged["grafanaDashboard"]["enabled"] else 0), "grafanaDashboard toggle")
    pod = r.one("StatefulSet", full)["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    job = merged["metrics"]["jobLabel"] or full

    for sm in r.kinds("ServiceMonitor"):
        sel = sm["spec"]["selector"]["matchLabels"]
        matching = [s["metadata"]["name"] for s in r.kinds("Service") if set(sel.items()) <= set(s["metadata"]["labels"].items())]
        C.check(matching == [full], f"ServiceMonitor selects only the admin Service (got {matching})")
        ep = sm["spec"]["endpoints"][0]
        C.check(ep["port"] == "admin" and ep["path"] == "/metrics", "ServiceMonitor scrapes admin /metrics")
        C.check({"targetLabel": "job", "replacement": job} in ep.get("relabelings", []), f"ServiceMonitor sets job={job}")
        C.check(set(merged["serviceMonitor"]["labels"].items()) <= set(sm["metadata"]["labels"].items()), "ServiceMonitor labels")
    for pm in r.kinds("PodMonitor"):
        sel = pm["spec"]["selector"]["matchLabels"]
        C.check(set(sel.items()) <= set(pod_labels.items()), "PodMonitor selects the pod")
        ep = pm["spec"]["podMetricsEndpoints"][0]
        C.check(ep["port"] == "admin" and ep["path"] == "/metrics", "PodMonitor scrapes admin /metrics")
        C.check({"targetLabel": "job", "replacement": job} in ep.get("relabelings", []), f"PodMonitor sets job={job}")
    for pdb in r.kinds("PodDisruptionBudget"):
        C.check(pdb["spec"].get("maxUnavailable") == 1, "PodDisruptionBudget maxUnavailable 1")
        C.check(set(pdb["spec"]["selector"]["matchLabels"].items()) <= set(pod_labels.items()), "PDB selects the pod")
    for np_ in r.kinds("NetworkPolicy"):
        spec = np_["spec"]
        C.check(set(spec["podSelector"]["matchLabels"].items()) <= set(pod_labels.items()), "NetworkPolicy selects the pod")
        in_ports = {p["port"] for rule in spec.get("ingress", []) for p in rule.get("ports", [])}
        C.check(merged["ports"]["admin"] in in_ports, "NetworkPolicy admits the admin port")
        C.check(merged["ports"]["registry"] in in_ports, "NetworkPolicy admits the registry port")
        for rule in spec.get("ingress", []):
            if "from" in rule:
                test_sel = [p for p in rule["from"] if p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "test"]
                C.check(test_sel, "NetworkPolicy admits the helm test pod")
        if merged["networkPolicy"]["egress"]["enabled"]:
            C.check("Egress" in spec["policyTypes"], "egress restricted")
            out_ports = {p["port"] for rule in spec.get("egress", []) for p in rule.get("ports", [])}
            want = {53, *merged["networkPolicy"]["egress"]["postgres"]["ports"], *merged["networkPolicy"]["egress"]["kafka"]["ports"]}
            C.check(want <= out_ports, f"egress allows DNS, PostgreSQL and Kafka ports {sorted(want)}")
    for d in dash:
        labels = d["metadata"]["labels"]
        C.check(labels.get("grafana_dashboard") == "1", 'dashboard ConfigMap has grafana_dashboard: "1"')
        C.check(json.loads(d["data"]["sluice.json"]) == json.loads((CHART / "files/dashboard.json").read_text()), "dashboard ConfigMap holds files/dashboard.json")
    for pr in r.kinds("PrometheusRule"):
        check_rendered_rules(pr, merged, job)


# --- sluice check-config -----------------------------------------------------------------


def check_config_accepted(r: Rendered, sluice: Path) -> None:
    C.start(f"sluice check-config accepts the rendered sluice.yaml ({r.label})")
    if not C.check(sluice.exists(), f"{sluice} exists (build it with `cargo build -p sluice`)"):
        return
    cfg, text = config_of(r)
    sts = r.one("StatefulSet", f"{RELEASE}-sluice")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    with tempfile.TemporaryDirectory(prefix="sluice-chart-") as tmp:
        fake_root = Path(tmp) / "root"
        # Files the pod gets from mounted Secrets exist under a fake root.
        pg = cfg.get("source", {}).get("postgres", {})
        if pg.get("password_file"):
            p = fake_root / pg["password_file"].lstrip("/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("placeholder-password\n")
            text = text.replace(pg["password_file"], str(p))
        sasl = cfg.get("sink", {}).get("kafka", {}).get("security", {}).get("sasl", {})
        if sasl.get("password_file"):
            p = fake_root / sasl["password_file"].lstrip("/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("placeholder-password\n")
            text = text.replace(sasl["password_file"], str(p))
        reg = cfg.get("schema_registry", {})
        if reg.get("data_dir", "").startswith("/"):
            text = text.replace(reg["data_dir"], str(fake_root / reg["data_dir"].lstrip("/")))
        path = Path(tmp) / "sluice.yaml"
        path.write_text(text)
        # The container's environment: literal values as they are, Secret refs as placeholders.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for e in container.get("env", []):
            env[e["name"]] = e.get("value", "placeholder") if "valueFrom" not in e else "placeholder"
        run = subprocess.run([str(sluice), "check-config", "--config", str(path)], env=env, capture_output=True, text=True, timeout=60)
        print(f"   sluice check-config --config {path.name}: exit {run.returncode}, {run.stdout.strip()}")
        C.check(
            run.returncode == 0 and "configuration OK" in run.stdout,
            f"check-config exit {run.returncode}: {run.stdout.strip()} {run.stderr.strip()}\n--- sluice.yaml\n{text}",
        )
        # Control: the same file without its password file is refused naming the key.
        if pg.get("password_file"):
            (fake_root / pg["password_file"].lstrip("/")).unlink()
            run = subprocess.run([str(sluice), "check-config", "--config", str(path)], env=env, capture_output=True, text=True, timeout=60)
            C.check(run.returncode == 78 and "source.postgres.password_file" in run.stderr, f"control: missing password file refused (exit {run.returncode})")


def rust_config_model() -> tuple[dict, dict]:
    text = (ROOT / "agent/src/config/model.rs").read_text()
    structs: dict[str, dict[str, str]] = {}
    for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", text, re.S):
        structs[m.group(1)] = dict(re.findall(r"^\s*pub (\w+): ([^\n]+),\s*$", m.group(2), re.M))
    enums: dict[str, list[str]] = {}
    for m in re.finditer(r"pub enum (\w+) \{(.*?)\n\}", text, re.S):
        variants = re.findall(r"^\s*(\w+),\s*$", m.group(2), re.M)
        enums[m.group(1)] = [re.sub(r"(?<!^)([A-Z])", r"_\1", v).lower() for v in variants]
    return structs, enums


def check_schema_matches_model() -> None:
    C.start("values.schema.json config keys = agent/src/config/model.rs")
    structs, enums = rust_config_model()
    schema = json.loads((CHART / "values.schema.json").read_text())
    # Keys the chart sets itself and therefore keeps out of values.config.
    chart_owned = {"Config.admin", "RegistrySection.listen"}

    def walk(struct: str, node: dict, path: str) -> None:
        fields = structs[struct]
        props = node.get("properties", {})
        for f, ty in fields.items():
            if f"{struct}.{f}" in chart_owned:
                C.check(f not in props, f"{path}{f} is set by the chart, not a config value")
                continue
            if not C.check(f in props, f"config key {path}{f} (Sluice) is in values.schema.json"):
                continue
            inner = re.sub(r"^Option<(.*)>$", r"\1", ty.strip())
            if inner in structs:
                walk(inner, props[f], f"{path}{f}.")
            elif inner in enums:
                C.check(sorted(props[f].get("enum", [])) == sorted(enums[inner]), f"{path}{f} enum {enums[inner]}")
        for p in props:
            C.check(p in fields, f"values.schema.json key {path}{p} exists in Sluice's config")
        C.check(node.get("additionalProperties") is False, f"{path or 'config'}: unknown keys refused")

    walk("Config", schema["properties"]["config"], "")


# --- alert rules ---------------------------------------------------------------------------


def known_metrics() -> set[str]:
    text = "".join(p.read_text() for p in sorted((ROOT / "agent/src/metrics").glob("*.rs")))
    names = set(re.findall(r'"(sluice_[a-z0-9_]+)"', text))
    if not names:
        raise SystemExit("no metric names found under agent/src/metrics/")
    return names


def metric_ok(name: str, known: set[str]) -> bool:
    if name in known:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return True
    return False


def promtool() -> str | None:
    for cand in (TOOLS_BIN / "promtool", VENV_BIN / "promtool"):
        if cand.exists():
            return str(cand)
    return shutil.which("promtool")


def check_rule_groups(groups: list, label: str, job: str) -> set[str]:
    known = known_metrics()
    names = set()
    for g in groups:
        C.check(g.get("name") and g.get("rules"), f"{label}: group {g.get('name')} has rules")
        for rule in g.get("rules", []):
            a = rule.get("alert") or rule.get("record")
            names.add(a)
            expr = str(rule.get("expr", ""))
            for metric in set(re.findall(r"\b(sluice_[a-z0-9_]+)", expr)):
                C.check(metric_ok(metric, known), f"{label}: {a}: metric {metric} exists in agent/src/metrics.rs")
            if a and a.startswith("Sluice") and "alert" in rule and a != "SluiceBuildInfoMissing":
                sev = rule.get("labels", {}).get("severity")
                C.check(sev in ("critical", "warning", "info"), f"{label}: {a}: severity {sev}")
                ann = rule.get("annotations", {})
                for k in ("summary", "description", "runbook"):
                    C.check(len(str(ann.get(k, "")).strip()) > 20 or (k == "summary" and ann.get(k)), f"{label}: {a}: annotation {k}")
                C.check("for" in rule, f"{label}: {a}: has for")
                for m in re.finditer(r"\b(sluice_[a-z0-9_]+|up)\b(\{[^}]*\})?", expr):
                    C.check(m.group(2) and f'job="{job}"' in m.group(2), f"{label}: {a}: {m.group(0)} selects job=\"{job}\"")
    return names


def check_alerts_file() -> None:
    C.start("files/alerts.yaml")
    path = CHART / "files/alerts.yaml"
    text = path.read_text()
    rules = yaml.safe_load(text)
    names = check_rule_groups(rules["groups"], "alerts.yaml", "sluice")
    missing = REQUIRED_ALERTS - names
    C.check(not missing, f"required alerts present (missing: {sorted(missing)})")
    check_yamllint("helm/sluice/files/alerts.yaml", text)
    tool = promtool()
    if not tool:
        C.note("promtool not found (scripts/setup.sh extracts it to .tools/bin): skipping promtool check/test rules")
        return
    run = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True)
    C.check(run.returncode == 0, f"promtool check rules alerts.yaml: {run.stdout}{run.stderr}")
    with tempfile.TemporaryDirectory(prefix="sluice-rules-") as tmp:
        stripped = copy.deepcopy(rules)
        for g in stripped["groups"]:
            for rule in g["rules"]:
                rule.pop("annotations", None)
        (Path(tmp) / "alerts.yaml").write_text(yaml.safe_dump(stripped, sort_keys=False))
        shutil.copy(HERE / "alerts_test.yaml", Path(tmp) / "alerts_test.yaml")
        run = subprocess.run([tool, "test", "rules", "alerts_test.yaml"], cwd=tmp, capture_output=True, text=True)
        C.check(run.returncode == 0, f"promtool test rules tests/helm/alerts_test.yaml:\n{run.stdout}{run.stderr}")
        tested = set(re.findall(r"alertname: (\w+)", (HERE / "alerts_test.yaml").read_text()))
        C.check(names <= tested, f"every alert has a promtool test (untested: {sorted(names - tested)})")


def check_rendered_rules(pr: dict, merged: dict, job: str) -> None:
    groups = pr["spec"]["groups"]
    file_rules = yaml.safe_load((CHART / "files/alerts.yaml").read_text())
    want = {r["alert"] for g in file_rules["groups"] for r in g["rules"]} - set(merged["prometheusRule"]["disabledAlerts"])
    want |= {r.get("alert") or r.get("record") for r in merged["prometheusRule"]["extraRules"]}
    got = check_rule_groups(groups, "PrometheusRule", job)
    C.check(got == want, f"PrometheusRule alerts = files/alerts.yaml - disabledAlerts + extraRules ({sorted(got ^ want)})")
    body = json.dumps(groups)
    C.check('job=\\"sluice\\"' not in body or job == "sluice", "no job=\"sluice\" left in the PrometheusRule")
    for g in groups:
        for rule in g["rules"]:
            for k, v in merged["prometheusRule"]["ruleLabels"].items():
                C.check(rule.get("labels", {}).get(k) == v, f"PrometheusRule {rule.get('alert')}: label {k}={v}")
    tool = promtool()
    if tool:
        with tempfile.TemporaryDirectory(prefix="sluice-prule-") as tmp:
            p = Path(tmp) / "rules.yaml"
            p.write_text(yaml.safe_dump({"groups": groups}))
            run = subprocess.run([tool, "check", "rules", str(p)], capture_output=True, text=True)
            C.check(run.returncode == 0, f"promtool check rules (rendered PrometheusRule): {run.stdout}{run.stderr}")


# --- dashboard -----------------------------------------------------------------------------


def all_panels(panels: list) -> list:
    out = []
    for p in panels:
        out.append(p)
        out.extend(all_panels(p.get("panels", [])))
    return out


def check_dashboard() -> None:
    C.start("files/dashboard.json")
    try:
        dash = json.loads((CHART / "files/dashboard.json").read_text())
    except json.JSONDecodeError as e:
        C.check(False, f"dashboard.json is not JSON: {e}")
        return
    C.check(True, "dashboard.json parses")
    C.check(dash.get("title") and dash.get("uid"), "title and uid")
    panels = all_panels(dash.get("panels", []))
    ids = [p["id"] for p in panels]
    C.check(len(ids) == len(set(ids)), "panel ids are unique")
    known = known_metrics()
    used: set[str] = set()
    for p in panels:
        if p.get("type") == "row":
            continue
        C.check(p.get("title") and p.get("gridPos"), f"panel {p.get('id')} has a title and position")
        C.check(p.get("datasource", {}).get("uid") == "${datasource}", f"panel {p.get('title')}: datasource variable")
        C.check(p.get("targets"), f"panel {p.get('title')} has queries")
        for t in p.get("targets", []):
            for metric in set(re.findall(r"\b(sluice_[a-z0-9_]+)", t.get("expr", ""))):
                used.add(metric)
                C.check(metric_ok(metric, known), f"panel {p.get('title')}: metric {metric} exists in agent/src/metrics.rs")
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else str(q or "")
        for metric in set(re.findall(r"\b(sluice_[a-z0-9_]+)", q)):
            C.check(metric_ok(metric, known), f"variable {v.get('name')}: metric {metric} exists")
    for need in (
        "sluice_events_total",
        "sluice_kafka_transactions_total",
        "sluice_kafka_transaction_duration_seconds_bucket",
        "sluice_slot_retained_wal_bytes",
        "sluice_slot_flush_lag_bytes",
        "sluice_source_confirmed_flush_lsn",
        "sluice_ready",
        "sluice_errors_total",
    ):
        C.check(need in used, f"dashboard shows {need}")
    events = [t["expr"] for p in panels for t in p.get("targets", []) if "sluice_events_total" in t.get("expr", "")]
    C.check(any("table" in e and "op" in e for e in events), "events/s by table and op")
    durations = " ".join(t["expr"] for p in panels for t in p.get("targets", []) if "duration" in t.get("expr", ""))
    C.check("histogram_quantile(0.5" in durations and "histogram_quantile(0.99" in durations, "transaction duration p50 and p99")
    unused = sorted(m for m in known if not any(metric_ok(u, {m}) or u == m for u in used))
    if unused:
        C.note(f"metrics not on the dashboard: {', '.join(unused)}")


# --- Dockerfile ----------------------------------------------------------------------------


def check_dockerfile() -> None:
    C.start("Dockerfile")
    path = ROOT / "Dockerfile"
    if not C.check(path.exists(), "Dockerfile at the repository root"):
        return
    text = path.read_text()
    hadolint = VENV_BIN / "hadolint"
    if hadolint.exists():
        run = subprocess.run([str(hadolint), "--no-color", "--failure-threshold", "info", str(path)], capture_output=True, text=True)
        C.check(run.returncode == 0, f"hadolint Dockerfile:\n{run.stdout}{run.stderr}")
    else:
        C.note("hadolint not installed in the venv: structural checks only")
    # Structure: join continuation lines, then look at the instructions.
    logical = re.sub(r"\\\n", " ", text)
    instr = [l.strip() for l in logical.splitlines() if l.strip() and not l.strip().startswith("#")]
    froms = [l for l in instr if l.upper().startswith("FROM ")]
    C.check(len(froms) >= 2, "multi-stage build")
    C.check(froms and re.match(r"FROM\s+(--platform=\S+\s+)?rust:1-bookworm\s+AS\s+\w+", froms[0], re.I), f"builder stage from rust:1-bookworm ({froms[:1]})")
    C.check(froms and "gcr.io/distroless/cc-debian12:nonroot" in froms[-1], f"final stage distroless cc-debian12:nonroot ({froms[-1:]})")
    apt = " ".join(l for l in instr if "apt-get install" in l)
    for pkg in ("cmake", "g++", "libcurl4-openssl-dev"):
        C.check(re.search(rf"(^|\s){re.escape(pkg)}(\s|$)", apt), f"builder installs {pkg}")
    C.check(re.search(r"cargo build --release --locked -p sluice", logical), "cargo build --release --locked -p sluice")
    final = logical[logical.rfind(froms[-1]) :] if froms else ""
    C.check(re.search(r'^ENTRYPOINT \["/usr/local/bin/sluice"\]', final, re.M), "ENTRYPOINT sluice")
    C.check(re.search(r'^CMD \["run", "--config", "/etc/sluice/sluice.yaml"\]', final, re.M), "CMD run --config /etc/sluice/sluice.yaml")
    C.check(re.search(r"^EXPOSE 9187 8081", final, re.M), "EXPOSE 9187 8081")
    user = re.findall(r"^USER (\S+)", final, re.M)
    C.check(user and user[-1] in ("nonroot", "nonroot:nonroot", "65532", "65532:65532"), f"final stage runs as non-root ({user})")
    C.check(re.search(r"^COPY --from=\w+ \S*/sluice /usr/local/bin/sluice", final, re.M), "final stage copies the binary from the builder")
    ignore = ROOT / ".dockerignore"
    if C.check(ignore.exists(), ".dockerignore exists"):
        pats = {l.strip().strip("/") for l in ignore.read_text().splitlines() if l.strip() and not l.startswith("#")}
        for p in ("target", ".tools", ".git"):
            C.check(p in pats, f".dockerignore excludes {p}")
        for keep in ("agent", "connectors", "schema-registry", "tests", "Cargo.toml", "Cargo.lock"):
            C.check(keep not in pats, f".dockerignore keeps {keep} (workspace member or manifest)")
    values = load_yaml(CHART / "values.yaml")
    chart_meta = load_yaml(CHART / "Chart.yaml")
    C.check(values["image"]["repository"] == "ghcr.io/sluice-cdc/sluice", "chart image repository")
    C.check(chart_meta["appVersion"] == "0.1.0" and not values["image"]["tag"], "chart image tag defaults to appVersion 0.1.0")
    cargo = (ROOT / "Cargo.toml").read_text()
    ver = re.search(r'^\[workspace\.package\][^\[]*?^version = "([^"]+)"', cargo, re.M | re.S)
    C.check(ver and ver.group(1) == chart_meta["appVersion"], f"appVersion = workspace version ({ver.group(1) if ver else None})")


# --- README --------------------------------------------------------------------------------


def leaf_keys(node, prefix=""):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaf_keys(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1]


def check_readme() -> None:
    C.start("chart README.md")
    path = CHART / "README.md"
    if not C.check(path.exists(), "helm/sluice/README.md exists"):
        return
    text = path.read_text()
    values = load_yaml(CHART / "values.yaml")
    values_part = text.split("\n## Values\n", 1)
    if not C.check(len(values_part) == 2, 'README has a "## Values" section'):
        return
    rows = set(re.findall(r"^\| `([^`]+)` \|", values_part[1], re.M))
    for key in leaf_keys(values):
        C.check(key in rows, f"README table documents `{key}`")
    leaves = set(leaf_keys(values))
    for key in sorted(rows - leaves):
        C.check(False, f"README row `{key}` is not a value in values.yaml")
    alerts = {r["alert"] for g in load_yaml(CHART / "files/alerts.yaml")["groups"] for r in g["rules"]}
    documented = set(re.findall(r"^\| `(Sluice\w+)` \|", values_part[0], re.M))
    C.check(documented == alerts, f"README's alert table = files/alerts.yaml ({sorted(documented ^ alerts)})")
    for word in ("Recreate", "replication slot", "StatefulSet"):
        C.check(word in text, f"README explains {word}")
    check_yamllint("helm/sluice/values.yaml", (CHART / "values.yaml").read_text())
    check_yamllint("helm/sluice/Chart.yaml", (CHART / "Chart.yaml").read_text())
    for name in ("all-toggles.yaml", "alerts_test.yaml", "yamllint.yaml"):
        check_yamllint(f"tests/helm/{name}", (HERE / name).read_text())


# --- main ----------------------------------------------------------------------------------


def default_sluice() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else ROOT / "target") / "debug" / "sluice"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", type=Path, default=None, help="the sluice binary (default: $CARGO_TARGET_DIR or target, debug/sluice)")
    args = ap.parse_args()
    sluice = args.sluice or default_sluice()
    print(f"helm SDK {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}), kubernetes-validate {kubernetes_validate.__version__}, schemas {KUBE_VERSIONS}")

    defaults = load_yaml(CHART / "values.yaml")
    variants = {
        "default values": {},
        "tests/helm/all-toggles.yaml": load_yaml(HERE / "all-toggles.yaml"),
        "external registry, no persistence, digest": {
            "config": {"schema_registry": {"mode": "external", "url": "http://registry.schemas.svc:8081"}},
            "persistence": {"enabled": False},
            "image": {"digest": "sha256:" + "ab" * 32},
            "serviceAccount": {"create": False},
        },
    }
    for label, values in variants.items():
        C.start(f"helm lint ({label})")
        check_lint(label, values)
        r = render(label, values)
        if r is None:
            continue
        merged = deep_merge(defaults, values)
        check_kube_schemas(r)
        C.start(f"yamllint rendered manifests ({label})")
        check_yamllint(f"rendered[{label}]", r.stream())
        check_workload(r, merged)
        check_toggles(r, merged)
        check_config_accepted(r, sluice)

    C.start("config change rolls the pod")
    a = render("checksum a", {})
    b = render("checksum b", {"config": {"source": {"postgres": {"tables": ["public.orders", "public.items"]}}}})
    if a and b:
        ca = a.one("StatefulSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        cb = b.one("StatefulSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        C.check(ca != cb, "checksum/config changes with the config")

    check_schema_refusals()
    check_schema_matches_model()
    check_alerts_file()
    check_dashboard()
    check_dockerfile()
    check_readme()

    C.end()
    total = C.ok + len(C.failures)
    if C.failures:
        print(f"\nchart checks: {len(C.failures)} of {total} FAILED:")
        for f in C.failures:
            print(f"  - {f.splitlines()[0]}")
        return 1
    print(f"\nchart checks: all {total} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
