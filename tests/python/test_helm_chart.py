"""The Helm chart (charts/claude-pool), rendered by the real Helm over a matrix of values:
`helm lint`, `helm template`, assertions on the rendered objects, and every object validated
offline against the Kubernetes schemas (kubernetes-validate, strict)."""
import base64
import os
import subprocess
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "claude-pool"
HELM = ROOT / ".cache" / "helm" / "helm"
K8S_VERSION = "1.33.0"
RELEASE = "claude-code-api"
SEED = ["auth.claudeOAuthToken.value=sk-ant-oat01-seed", "auth.adminPassword.value=super-secret"]
PG = "postgres://claude_pool:pw@postgres:5432/claude_pool"


@pytest.fixture(scope="module", autouse=True)
def helm():
    if not HELM.exists():
        if os.environ.get("CI"):
            raise AssertionError(f"Helm is required in CI: {HELM} missing (scripts/install-helm.sh)")
        pytest.skip("Helm not installed (scripts/install-helm.sh)")


def helm_run(cmd, sets):
    args = [str(HELM), *cmd, str(CHART)]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def render(*sets):
    """Lints and renders the chart with `--set` values; returns {kind: [objects]}."""
    lint = helm_run(["lint"], sets)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    r = helm_run(["template", RELEASE], sets)
    assert r.returncode == 0, r.stderr
    objects = {}
    for doc in yaml.safe_load_all(r.stdout):
        if doc:
            objects.setdefault(doc["kind"], []).append(doc)
    for kind, docs in objects.items():
        if kind in ("ServiceMonitor", "ScaledObject"):  # CRDs: not in the Kubernetes schemas
            continue
        for doc in docs:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    return objects


def refused(*sets):
    """Renders with values the chart must refuse; returns Helm's message."""
    r = helm_run(["template", RELEASE], sets)
    assert r.returncode != 0, f"rendered although it should not: {sets}"
    return r.stderr


def one(objects, kind):
    assert len(objects.get(kind, [])) == 1, f"{kind}: {list(objects)}"
    return objects[kind][0]


def container(objects):
    return one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def env(objects):
    return {e["name"]: e for e in container(objects)["env"]}


def secret_ref(e):
    r = e["valueFrom"]["secretKeyRef"]
    return r["name"], r["key"]


def server_toml(objects):
    return tomllib.loads(one(objects, "ConfigMap")["data"]["claude-pool.toml"])


def test_the_seed_install_command():
    o = render(*SEED)
    s = one(o, "Secret")
    assert s["metadata"]["name"] == f"{RELEASE}-auth"
    assert base64.b64decode(s["data"]["ADMIN_PASSWORD"]) == b"super-secret"
    assert base64.b64decode(s["data"]["CLAUDE_CODE_OAUTH_TOKEN"]) == b"sk-ant-oat01-seed"
    e = env(o)
    assert secret_ref(e["ADMIN_PASSWORD"]) == (f"{RELEASE}-auth", "ADMIN_PASSWORD")
    assert secret_ref(e["CLAUDE_CODE_OAUTH_TOKEN"]) == (f"{RELEASE}-auth", "CLAUDE_CODE_OAUTH_TOKEN")
    assert e["PORT"]["value"] == "8000" and e["HTTPS_PORT"]["value"] == "8443"
    assert "DATABASE_URL" not in e, "SQLite by default"
    # The server's configuration: a TOML file it accepts, an OAuth token needs bare = false.
    cfg = server_toml(o)
    assert cfg["pool"]["min_workers"] == 2 and cfg["pool"]["max_workers"] == 8
    assert cfg["worker"]["bare"] is False
    assert cfg["server"]["log_format"] == "text"
    assert cfg["store"]["database_url"].startswith("sqlite://")
    d = one(o, "Deployment")
    pod = d["spec"]["template"]["spec"]
    assert d["spec"]["replicas"] == 1
    # SIGTERM: /readyz answers 503 for the drain delay, then running turns get the grace.
    assert cfg["server"]["drain_delay"] == "5s" and cfg["server"]["shutdown_grace"] == "30s"
    assert pod["terminationGracePeriodSeconds"] > 30 + 5
    assert set(d["spec"]["template"]["metadata"]["annotations"]) >= {"checksum/config", "checksum/secret"}
    c = container(o)
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/data", "/tmp", "/app/certs", "/etc/claude-pool"} <= mounts
    # Sized from the pool: 2 warm workers requested, 8 at most.
    assert c["resources"]["requests"]["memory"] == "650Mi"
    assert c["resources"]["limits"]["memory"] == "2150Mi"
    svc = one(o, "Service")
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http", 8000), ("https", 8443)]
    assert one(o, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert "Ingress" not in o and "HorizontalPodAutoscaler" not in o
    assert "PersistentVolumeClaim" not in o


def test_no_password_or_the_placeholder_is_refused_with_a_message():
    msg = refused()
    assert "auth.adminPassword" in msg and "changeme" in msg, msg
    msg = refused("auth.adminPassword.value=")
    assert "auth.adminPassword" in msg, msg
    b64 = base64.b64encode(b"changeme").decode()
    assert "changeme" in refused(f"auth.adminPassword.valueBase64={b64}")


def test_existing_secrets_replace_the_managed_one():
    o = render("auth.secret.create=false",
               "auth.adminPassword.existingSecret=ops-admin",
               "auth.adminPassword.existingSecretKey=password",
               "auth.claudeOAuthToken.existingSecret=ops-claude")
    assert "Secret" not in o
    e = env(o)
    assert secret_ref(e["ADMIN_PASSWORD"]) == ("ops-admin", "password")
    assert secret_ref(e["CLAUDE_CODE_OAUTH_TOKEN"]) == ("ops-claude", "CLAUDE_CODE_OAUTH_TOKEN")
    # Without per-credential secrets: a secret the user made under the managed name.
    o = render("auth.secret.create=false", "auth.secret.name=made-by-hand")
    e = env(o)
    assert secret_ref(e["ADMIN_PASSWORD"]) == ("made-by-hand", "ADMIN_PASSWORD")
    assert e["CLAUDE_CODE_OAUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_base64_values_are_stored_verbatim():
    pw = base64.b64encode(b"s3cret-pw").decode()
    tok = base64.b64encode(b"sk-ant-oat01-b64").decode()
    o = render(f"auth.adminPassword.valueBase64={pw}", f"auth.claudeOAuthToken.valueBase64={tok}",
               "secretEnv.data.MASTER_KEY=sk-master-0123456789")
    data = one(o, "Secret")["data"]
    assert data["ADMIN_PASSWORD"] == pw and data["CLAUDE_CODE_OAUTH_TOKEN"] == tok
    assert base64.b64decode(data["MASTER_KEY"]) == b"sk-master-0123456789"
    assert secret_ref(env(o)["MASTER_KEY"]) == (f"{RELEASE}-auth", "MASTER_KEY")


def test_ingress_with_tls_and_session_affinity():
    o = render(*SEED, "ingress.enabled=true", "ingress.className=nginx",
               "ingress.hosts[0]=api.example.com",
               "ingress.tls[0].secretName=api-tls", "ingress.tls[0].hosts[0]=api.example.com",
               r"ingress.annotations.nginx\.ingress\.kubernetes\.io/upstream-hash-by=$http_x_session_id")
    ing = one(o, "Ingress")
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"secretName": "api-tls", "hosts": ["api.example.com"]}]
    rule = ing["spec"]["rules"][0]
    assert rule["host"] == "api.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{RELEASE}-claude-pool", "port": {"name": "http"}}
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/upstream-hash-by"] == "$http_x_session_id"
    # The default host is the seed's.
    o = render(*SEED, "ingress.enabled=true")
    assert one(o, "Ingress")["spec"]["rules"][0]["host"] == "claude-code-api.local"


def test_autoscaling_needs_postgresql_and_owns_the_replica_count():
    msg = refused(*SEED, "autoscaling.enabled=true")
    assert "database.url" in msg, msg
    o = render(*SEED, "autoscaling.enabled=true", f"database.url={PG}",
               "autoscaling.targetMemoryUtilizationPercentage=70")
    hpa = one(o, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 100)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
               for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 80, "memory": 70}
    assert "replicas" not in one(o, "Deployment")["spec"]
    o = render(*SEED, "autoscaling.enabled=true", f"database.url={PG}")
    targets = [m["resource"]["name"] for m in one(o, "HorizontalPodAutoscaler")["spec"]["metrics"]]
    assert targets == ["cpu"], "the seed's empty memory target is no target"


def test_autoscaling_on_the_pool_signals():
    auto = (*SEED, "autoscaling.enabled=true", f"database.url={PG}")
    # pool: an HPA on Pods metrics of the custom metrics API, per-pod targets from the pool size.
    o = render(*auto, "autoscaling.mode=pool", "config.pool.maxWorkers=10")
    assert "ScaledObject" not in o
    metrics = one(o, "HorizontalPodAutoscaler")["spec"]["metrics"]
    targets = {m["pods"]["metric"]["name"]: m["pods"]["target"] for m in metrics}
    assert {m["type"] for m in metrics} == {"Pods"}
    assert targets == {
        "claude_pool_busy_workers": {"type": "AverageValue", "averageValue": "7000m"},
        "claude_pool_queue_depth": {"type": "AverageValue", "averageValue": "4000m"},
    }
    o = render(*auto, "autoscaling.mode=pool", "autoscaling.pool.queueDepth=0",
               "autoscaling.pool.busyRatio=0.5")
    metrics = one(o, "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert [m["pods"]["target"]["averageValue"] for m in metrics] == ["4000m"], "0.5 x 8 workers"
    # keda: a ScaledObject with Prometheus triggers on the same signals, no HPA of the chart's.
    o = render(*auto, "autoscaling.mode=keda", "autoscaling.keda.serverAddress=http://prom:9090",
               "autoscaling.minReplicas=2", "autoscaling.maxReplicas=6")
    assert "HorizontalPodAutoscaler" not in o
    so = one(o, "ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"]["scaleTargetRef"]["name"] == one(o, "Deployment")["metadata"]["name"]
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (2, 6)
    assert "replicas" not in one(o, "Deployment")["spec"]
    triggers = {t["name"]: t for t in so["spec"]["triggers"]}
    assert {t["type"] for t in triggers.values()} == {"prometheus"}
    busy = triggers["busy-workers"]["metadata"]
    assert busy["serverAddress"] == "http://prom:9090"
    assert busy["threshold"] == "5.6", "0.7 x 8 workers"
    assert busy["query"].startswith('sum(claude_pool_workers{state="busy",')
    assert f'service="{RELEASE}-claude-pool"' in busy["query"]
    assert triggers["queue-depth"]["metadata"]["threshold"] == "4"
    o = render(*auto, "autoscaling.mode=keda", "autoscaling.keda.selector=job=\"gw\"")
    q = one(o, "ScaledObject")["spec"]["triggers"][0]["metadata"]["query"]
    assert q == 'sum(claude_pool_workers{state="busy",job="gw"})'
    # The default stays the CPU HPA; bad values are refused by the schema.
    targets = [m["resource"]["name"] for m in one(render(*auto), "HorizontalPodAutoscaler")["spec"]["metrics"]]
    assert targets == ["cpu"]
    assert "autoscaling/mode" in refused(*auto, "autoscaling.mode=memory")
    assert "busyRatio" in refused(*auto, "autoscaling.pool.busyRatio=1.5")
    assert "busyRatio" in refused(*auto, "autoscaling.pool.busyRatio=0")
    assert "queueDepth" in refused(*auto, "autoscaling.pool.queueDepth=-1")
    assert "serverAddress" in refused(*auto, "autoscaling.keda.serverAddress=prom:9090")


def test_the_grafana_dashboard_as_a_configmap_for_the_sidecar():
    import json
    assert "ConfigMap" in render(*SEED) and len(render(*SEED)["ConfigMap"]) == 1
    o = render(*SEED, "grafana.dashboards.enabled=true", "grafana.dashboards.namespace=monitoring",
               "grafana.dashboards.annotations.grafana_folder=claude-pool")
    cm = [c for c in o["ConfigMap"] if c["metadata"]["name"].endswith("-dashboard")]
    assert len(cm) == 1
    meta = cm[0]["metadata"]
    assert meta["labels"]["grafana_dashboard"] == "1"
    assert meta["namespace"] == "monitoring"
    assert meta["annotations"] == {"grafana_folder": "claude-pool"}
    shipped = cm[0]["data"]["claude-pool.json"]
    assert json.loads(shipped) == json.loads((ROOT / "deploy/grafana/claude-pool.json").read_text())
    o = render(*SEED, "grafana.dashboards.enabled=true", "grafana.dashboards.label=dashboards",
               "grafana.dashboards.labelValue=pool")
    cm = [c for c in o["ConfigMap"] if c["metadata"]["name"].endswith("-dashboard")][0]
    assert cm["metadata"]["labels"]["dashboards"] == "pool"
    assert "/grafana/dashboards" in refused(*SEED, "grafana.dashboards.folder=x")
    assert server_toml(render(*SEED, "app.logFormat=json"))["server"]["log_format"] == "json"
    assert "logFormat" in refused(*SEED, "app.logFormat=xml")


def test_three_replicas_on_postgresql():
    msg = refused(*SEED, "replicaCount=3")
    assert "PostgreSQL" in msg, msg
    o = render(*SEED, "replicaCount=3", f"database.url={PG}")
    assert one(o, "Deployment")["spec"]["replicas"] == 3
    assert base64.b64decode(one(o, "Secret")["data"]["DATABASE_URL"]).decode() == PG
    assert secret_ref(env(o)["DATABASE_URL"]) == (f"{RELEASE}-auth", "DATABASE_URL")
    o = render(*SEED, "replicaCount=3", "database.existingSecret=pg", "database.existingSecretKey=url")
    assert secret_ref(env(o)["DATABASE_URL"]) == ("pg", "url")
    assert "postgres://" in refused(*SEED, "database.url=mysql://db/x")


def test_persistence_keeps_the_data_folder_on_a_claim():
    o = render(*SEED, "persistence.enabled=true", "persistence.size=20Gi",
               "persistence.storageClass=fast")
    pvc = one(o, "PersistentVolumeClaim")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert pvc["spec"]["storageClassName"] == "fast"
    d = one(o, "Deployment")
    vols = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
    assert vols["data"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert d["spec"]["strategy"]["type"] == "Recreate", "one ReadWriteOnce claim"
    o = render(*SEED, "persistence.enabled=true", "persistence.existingClaim=mine")
    assert "PersistentVolumeClaim" not in o
    vols = {v["name"]: v for v in one(o, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert vols["data"]["persistentVolumeClaim"]["claimName"] == "mine"


def test_a_configuration_change_rolls_the_pods():
    def checksums(*sets):
        a = one(render(*SEED, *sets), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return a["checksum/config"], a["checksum/secret"]
    base = checksums()
    more = checksums("config.pool.maxWorkers=12")
    assert more[0] != base[0] and more[1] == base[1]
    assert checksums("auth.adminPassword.value=other")[1] != base[1]
    # Resources follow the pool unless given.
    c = container(render(*SEED, "config.pool.maxWorkers=12"))
    assert c["resources"]["limits"]["memory"] == "3150Mi"
    c = container(render(*SEED, "resources.limits.memory=1Gi"))
    assert c["resources"] == {"limits": {"memory": "1Gi"}}


def test_extra_environment_service_monitor_and_bad_values():
    o = render(*SEED, "env.CLAUDE_POOL_POOL__SPARE_WORKERS=2",
               "envSecrets.ANTHROPIC_API_KEY.name=anthropic", "envSecrets.ANTHROPIC_API_KEY.key=key",
               "serviceMonitor.enabled=true", "service.ports.https.enabled=false",
               "nameOverride=gw")
    e = env(o)
    assert e["CLAUDE_POOL_POOL__SPARE_WORKERS"]["value"] == "2"
    assert secret_ref(e["ANTHROPIC_API_KEY"]) == ("anthropic", "key")
    sm = one(o, "ServiceMonitor")
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    assert [p["name"] for p in one(o, "Service")["spec"]["ports"]] == ["http"]
    assert one(o, "Deployment")["metadata"]["name"] == f"{RELEASE}-gw"
    assert "terminationGracePeriodSeconds" in refused(*SEED, "terminationGracePeriodSeconds=30")
    assert "drainDelaySeconds" in refused(*SEED, "terminationGracePeriodSeconds=35")
    assert "minWorkers" in refused(*SEED, "config.pool.minWorkers=9")
    assert "replicaCount" in refused(*SEED, "replicaCount=many")


def test_the_chart_readme_lists_every_parameter():
    """The parameter table is generated from values.yaml (scripts/chart-readme.sh); a value
    without its row means the README was not regenerated."""
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def leaves(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and v:
                yield from leaves(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"
    missing = [p for p in leaves(values) if f"`{p}`" not in readme]
    assert missing == [], missing
