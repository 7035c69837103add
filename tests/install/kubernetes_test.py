#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""deploy/kubernetes checked without a cluster, against the Kubernetes API's own types.

Every object of the kustomization (and secrets.example.yaml) is read with python3-yaml and walked
against the model classes of Debian's python3-kubernetes (their openapi_types and attribute_map):
a field the API does not have, or a value of the wrong type, fails; the object is then built with
the client's ApiClient.deserialize, whose constructors reject a missing required field. Debian's
models are those of Kubernetes 1.22; the one newer field the manifests use, the gRPC probe (GA in
1.27), is added below with its types. Then what no schema sees: the probes reach a container port,
the ConfigMap and Secrets named exist with the keys the settings point at, the grace period and the
liveness probe outlast the drain, the memory budget fits the memory limit, the ports of the
settings, the container, the Service and the scrape annotations agree, the command is the one the
Containerfile installs, and the policy is TOML. The checker is shown to fail on mutated copies of
the DaemonSet.

    kubernetes_test.py SOURCE_DIR
"""
import copy
import json
import os
import sys
import tomllib

SKIP = 77
try:
    import yaml
    import kubernetes.client
except ImportError as missing:
    print(f"SKIP: {missing.name} is not installed (python3-yaml, python3-kubernetes: scripts/install-deps.sh)")
    sys.exit(SKIP)

# Fields of later Kubernetes versions than the models': type -> {json name: type}; and the types
# they use: name -> ({json name: type}, required json names).
NEWER_FIELDS = {"V1Probe": {"grpc": "GRPCAction"}}
NEWER_TYPES = {"GRPCAction": ({"port": "int", "service": "str"}, {"port"})}

MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
}
PRIMITIVES = {"str": str, "int": int, "float": (int, float), "bool": bool}
failures = []


def check(condition, what):
    print(("ok: " if condition else "FAIL: ") + what)
    if not condition:
        failures.append(what)
    return condition


def schema_errors(value, type_name, where):
    """What in `value` the type `type_name` does not allow: unknown fields, wrong types."""
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return [f"{where}: a list expected"]
        return [e for i, item in enumerate(value) for e in schema_errors(item, type_name[5:-1], f"{where}[{i}]")]
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            return [f"{where}: a map expected"]
        item_type = type_name[5:-1].split(", ", 1)[1]
        return [e for k, v in value.items() for e in schema_errors(v, item_type, f"{where}.{k}")]
    if type_name in ("object", "datetime", "date"):
        return []
    if type_name in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[type_name]) and (type_name == "bool" or not isinstance(value, bool))
        return [] if ok else [f"{where}: {type_name} expected, not {value!r}"]
    if not isinstance(value, dict):
        return [f"{where}: an object ({type_name}) expected"]
    if type_name in NEWER_TYPES:
        fields, required = NEWER_TYPES[type_name]
        errors = [f"{where}.{name}: required" for name in required if name not in value]
    else:
        model = getattr(kubernetes.client, type_name)
        fields = {model.attribute_map[p]: t for p, t in model.openapi_types.items()} | NEWER_FIELDS.get(type_name, {})
        errors = []
    for key, item in value.items():
        if key not in fields:
            errors.append(f"{where}.{key}: no such field in {type_name}")
        else:
            errors += schema_errors(item, fields[key], f"{where}.{key}")
    return errors


class Response:
    """What ApiClient.deserialize reads: an HTTP answer's body."""

    def __init__(self, document):
        self.data = json.dumps(document)


def object_errors(document, where):
    """Schema errors of one Kubernetes object, then what its model's constructors refuse."""
    model = MODELS.get((document.get("apiVersion"), document.get("kind")))
    if model is None:
        return [f"{where}: unexpected apiVersion/kind {document.get('apiVersion')}/{document.get('kind')}"]
    errors = schema_errors(document, model, where)
    if errors:
        return errors
    try:
        kubernetes.client.ApiClient().deserialize(Response(document), model)
    except (ValueError, TypeError) as refused:
        return [f"{where}: {refused}"]
    return []


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def files_behind(path, container, volumes):
    """The (kind, name, key) a file path in the container is read from, through its volume mount."""
    for mount in container.get("volumeMounts", []):
        folder = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(folder) and "subPath" not in mount:
            volume = volumes[mount["name"]]
            key = path[len(folder):]
            if "configMap" in volume:
                return ("ConfigMap", volume["configMap"]["name"], key)
            if "secret" in volume:
                return ("Secret", volume["secret"]["secretName"], key)
    return None


def keys_of(obj):
    return set(obj.get("data", {})) | set(obj.get("stringData", {}))


def cross_reference_errors(objects, containerfile):
    """What the schema cannot see: the objects agreeing with each other and with the image."""
    errors = []
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    daemonset = by_kind["DaemonSet"]["tools-server"]
    pod = daemonset["spec"]["template"]
    spec = pod["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    (container,) = spec["containers"]
    env = env_of(container)
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}

    if daemonset["spec"]["selector"]["matchLabels"].items() - pod["metadata"]["labels"].items():
        errors.append("the DaemonSet's selector does not match its pod template")
    for probe_name in ("readinessProbe", "livenessProbe"):
        probe = container.get(probe_name, {})
        if "grpc" not in probe:
            errors.append(f"{probe_name}: not a grpc.health.v1 probe")
        elif probe["grpc"]["port"] not in ports.values():
            errors.append(f"{probe_name}: port {probe['grpc']['port']} is not a container port")

    drain_s = int(env.get("TOOLS_DRAIN_TIMEOUT_MS", "30000")) / 1000
    if not spec.get("terminationGracePeriodSeconds", 30) > drain_s:
        errors.append(f"terminationGracePeriodSeconds does not outlast TOOLS_DRAIN_TIMEOUT_MS ({drain_s} s)")
    liveness = container.get("livenessProbe", {})
    if not liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3) > drain_s:
        errors.append("the liveness probe would restart a draining server (NOT_SERVING) before the drain ends")

    if port_of(env.get("TOOLS_GRPC_ADDR", ":0")) != ports.get("grpc"):
        errors.append("TOOLS_GRPC_ADDR's port is not the container port named grpc")
    metrics = ports.get("metrics")
    if env.get("TOOLS_METRICS_ADDR") is None or port_of(env["TOOLS_METRICS_ADDR"]) != metrics:
        errors.append("TOOLS_METRICS_ADDR's port is not the container port named metrics")
    if pod["metadata"].get("annotations", {}).get("prometheus.io/port") != str(metrics):
        errors.append("the prometheus.io/port annotation is not the metrics port")

    limit = container.get("resources", {}).get("limits", {}).get("memory", "")
    units = {"Mi": 1, "Gi": 1024}
    limit_mib = int(limit[:-2]) * units[limit[-2:]] if limit[-2:] in units else None
    budget = env.get("TOOLS_MEMORY_BUDGET_MB")
    if limit_mib is None or budget is None or not int(budget) + 100 <= limit_mib:
        errors.append("TOOLS_MEMORY_BUDGET_MB plus the server's ~100 MiB must fit the memory limit (Mi or Gi): "
                      "the runs' cgroups are inside the container's")
    for setting in ("TOOLS_POLICY_FILE", "TOOLS_AUTH_TOKENS_FILE", "TOOLS_TLS_CERT", "TOOLS_TLS_KEY"):
        source = files_behind(env.get(setting) or "", container, volumes)
        if source is None:
            errors.append(f"{setting}: not a file in a ConfigMap or Secret folder mount")
            continue
        kind, name, key = source
        if name not in by_kind.get(kind, {}):
            errors.append(f"{setting}: {kind} {name} is not defined")
        elif key not in keys_of(by_kind[kind][name]):
            errors.append(f"{setting}: {kind} {name} has no key {key}")
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        secret = by_kind.get("Secret", {}).get(ref["name"]) if ref else None
        if ref and (secret is None or ref["key"] not in keys_of(secret)):
            errors.append(f"{item['name']}: Secret {ref['name']} with key {ref['key']} is not defined")
    policy = files_behind(env.get("TOOLS_POLICY_FILE") or "", container, volumes)
    if policy and policy[1] in by_kind.get("ConfigMap", {}):
        try:
            tomllib.loads(by_kind["ConfigMap"][policy[1]]["data"][policy[2]])
        except (tomllib.TOMLDecodeError, KeyError) as bad:
            errors.append(f"the policy is not TOML: {bad}")

    for service in by_kind.get("Service", {}).values():
        if service["spec"]["selector"].items() - pod["metadata"]["labels"].items():
            errors.append(f"Service {service['metadata']['name']} selects no tools-server pod")
        for port in service["spec"]["ports"]:
            if port["targetPort"] not in ports and port["targetPort"] not in ports.values():
                errors.append(f"Service {service['metadata']['name']}: targetPort {port['targetPort']} is not open")
    if by_kind.get("Service", {}).get("tools-server", {}).get("spec", {}).get("clusterIP") != "None":
        errors.append("Service tools-server is not headless (clients balance over the pods' addresses)")

    entrypoint = next((line for line in containerfile.splitlines() if line.startswith("ENTRYPOINT ")), "")
    if container.get("command") != json.loads(entrypoint[len("ENTRYPOINT "):] or "null"):
        errors.append(f"the command {container.get('command')} is not the Containerfile's {entrypoint}")
    return errors


def main():
    source = sys.argv[1]
    folder = os.path.join(source, "deploy", "kubernetes")
    kustomization = load(os.path.join(folder, "kustomization.yaml"))[0]
    listed = kustomization["resources"]
    not_resources = ("kustomization.yaml", "secrets.example.yaml")
    present = sorted(n for n in os.listdir(folder) if n.endswith(".yaml") and n not in not_resources)
    check(sorted(listed) == present, f"kustomization.yaml lists every manifest: {present}")
    check(set(kustomization) <= {"apiVersion", "kind", "namespace", "resources"},
          "kustomization.yaml uses known fields only")

    objects = []
    for name in listed + ["secrets.example.yaml"]:
        for i, document in enumerate(load(os.path.join(folder, name))):
            where = f"{name}[{i}] {document.get('kind')}"
            errors = object_errors(document, where)
            check(not errors, f"{where} matches the API's types" + "".join("\n  " + e for e in errors))
            objects.append(document)
    with open(os.path.join(source, "deploy", "container", "Containerfile")) as f:
        containerfile = f.read()
    errors = cross_reference_errors(objects, containerfile)
    check(not errors, "the objects agree with each other and with the image" + "".join("\n  " + e for e in errors))

    # The checker itself: each mutation of the DaemonSet must be caught.
    index = next(i for i, o in enumerate(objects) if o["kind"] == "DaemonSet")

    def mutated(change):
        copied = copy.deepcopy(objects)
        change(copied[index]["spec"]["template"]["spec"])
        return copied

    def container(spec):
        return spec["containers"][0]

    schema_mutations = {
        "a misspelt field": lambda s: container(s)["securityContext"].update(privilegd=True),
        "a string where an integer belongs": lambda s: s.update(terminationGracePeriodSeconds="45"),
        "a container without its required name": lambda s: container(s).pop("name"),
        "a gRPC probe without its port": lambda s: container(s)["readinessProbe"]["grpc"].pop("port"),
    }
    for what, change in schema_mutations.items():
        copied = mutated(change)
        check(object_errors(copied[index], "DaemonSet") != [], f"the schema check refuses {what}")
    reference_mutations = {
        "a probe on a port the container does not open":
            lambda s: container(s)["livenessProbe"]["grpc"].update(port=50055),
        "a grace period shorter than the drain": lambda s: s.update(terminationGracePeriodSeconds=20),
        "a ConfigMap name nothing defines": lambda s: s["volumes"][0]["configMap"].update(name="tools-server-policies"),
        "a command the image does not install": lambda s: container(s).update(command=["/usr/bin/tools-server"]),
        "a memory budget the memory limit cannot hold":
            lambda s: container(s)["resources"]["limits"].update(memory="6Gi"),
    }
    for what, change in reference_mutations.items():
        check(cross_reference_errors(mutated(change), containerfile) != [], f"the cross-reference check refuses {what}")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
