"""deploy/: the CloudFormation template, the Kubernetes manifests and compose.yaml, checked offline.

- deploy/aws/heicconv.yaml passes cfn-lint (AWS's linter, with its bundled resource specs) with no
  error or warning, grants exactly the permissions the converters use, and deploys to moto's
  CloudFormation; the resources moto creates then carry a photo end to end on both routes: S3's own
  notification -> the stack's queue -> the real Lambda handler, configured by the deployed function's
  environment; and, with the notification pointed at a container-route stack's queue, the real
  ``heicconv worker`` -> the same object.
- deploy/kubernetes/ matches the Kubernetes schemas (kubernetes-validate's bundled ones, strict: an
  unknown field fails) and KEDA's CRD schema (tests/schemas/keda-2.20.2.json, vendored: see its
  ``$comment``), and the sizes and timeouts agree with the worker's and service's settings.
- deploy/compose.yaml is consistent with the images and the manifests (``nox -s docker`` runs it).

Not validated here: a deployment to real AWS (IAM evaluation, S3's check that it may send to the
queue, CloudWatch alarms, Function URLs: moto's CloudFormation skips AWS::SQS::QueuePolicy,
AWS::CloudWatch::Alarm and AWS::Lambda::Url) and a real cluster (admission, KEDA's operator, IRSA).

To refresh the KEDA schema: take ``config/crd/bases/keda.sh_{scaledobjects,triggerauthentications}.yaml``
of a KEDA release, keep each served version's ``openAPIV3Schema`` without ``description`` fields.
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_lambda import moto_server
from test_queue_worker import finish, worker

from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_module

yaml = require_module("yaml", "deploy")

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "aws" / "heicconv.yaml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
KEDA_SCHEMAS = Path(__file__).resolve().parent / "schemas" / "keda-2.20.2.json"
KUBERNETES_VERSION = "1.33"


# -- the CloudFormation template -------------------------------------------------------------------------


def _lint(path: Path) -> list[str]:
    api = require_module("cfnlint.api", "deploy")
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in api.lint_file(path)]


def test_template_passes_cfn_lint() -> None:
    assert _lint(TEMPLATE) == []


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    broken = TEMPLATE.read_text(encoding="utf-8").replace("FunctionResponseTypes:", "FunctionResponseType:")
    broken = broken.replace("MaxValue: 10\n", "MaxValue: 10000\n", 1)
    (tmp_path / "t.yaml").write_text(broken, encoding="utf-8")
    found = _lint(tmp_path / "t.yaml")
    assert any(m.startswith("E3002") and "FunctionResponseType" in m for m in found), found


def _template() -> dict[str, Any]:
    decode = require_module("cfnlint.decode", "deploy")
    template, errors = decode.decode(str(TEMPLATE))
    assert not errors
    result: dict[str, Any] = template
    return result


def _statements(policy_resource: dict[str, Any]) -> dict[str, tuple[list[str], Any]]:
    props = policy_resource["Properties"]
    document = props["PolicyDocument"] if "PolicyDocument" in props else props["Policies"][0]["PolicyDocument"]
    out = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        out[statement["Sid"]] = (sorted(actions), statement["Resource"])
    return out


def test_converters_get_least_privilege() -> None:
    resources = _template()["Resources"]
    inputs = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${InputBucketName}/${InputPrefix}*"}
    queue = {"Fn::GetAtt": ["Queue", "Arn"]}
    # The function: heicconv.aws_lambda.s3_objects calls get_object and put_object; the event source mapping
    # receives, deletes and reads the queue's attributes; the runtime writes its log.
    function = _statements(resources["FunctionRole"])
    assert set(function) == {"ReadInputs", "WriteOutputs", "TakeMessages", "Log"}
    assert function["ReadInputs"] == (["s3:GetObject", "s3:GetObjectVersion"], inputs)
    assert function["WriteOutputs"][0] == ["s3:PutObject"]
    assert function["WriteOutputs"][1]["Fn::Sub"][0] == "arn:${AWS::Partition}:s3:::${Bucket}/${OutputPrefix}*"
    assert function["TakeMessages"] == (["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"], queue)
    assert function["Log"] == (["logs:CreateLogStream", "logs:PutLogEvents"], {"Fn::GetAtt": ["LogGroup", "Arn"]})
    # The worker pods also renew visibility (aws_lambda/queue_worker/worker.py change_message_visibility_batch).
    pods = _statements(resources["WorkerPolicy"])
    assert pods["ReadInputs"] == function["ReadInputs"] and pods["WriteOutputs"] == function["WriteOutputs"]
    assert pods["WorkTheQueue"] == (
        ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
        queue,
    )
    text = TEMPLATE.read_text(encoding="utf-8")
    assert (
        not re.search(r"Action:.*[:\[ ]\*", text) and "ManagedPolicyArns" not in text
    )  # no wildcards, no AWS policies


def _stack_parameters(**overrides: str) -> list[dict[str, str]]:
    values = {"InputBucketName": "photos", "CodeS3Bucket": "code", "CodeS3Key": "heicconv-lambda.zip", **overrides}
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    require_module("moto.cloudformation", "deploy")
    with moto_server("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS") as url:
        yield url


# moto's CloudFormation warns of each resource type it skips (QueuePolicy, Alarm: see the docstring).
_SKIPPED_BY_MOTO = pytest.mark.filterwarnings("ignore:Tried to parse AWS.* not supported by moto:UserWarning")


def _deploy(cfn: Any, name: str, **parameters: str) -> dict[str, str]:
    cfn.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(encoding="utf-8"),
        Parameters=_stack_parameters(**parameters),
        Capabilities=["CAPABILITY_IAM"],
    )
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _lambda_event(sqs: Any, queue_url: str) -> dict[str, Any]:
    """What the event source mapping hands the function: the queue's messages as SQS records."""
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    return {
        "Records": [
            {
                "eventSource": "aws:sqs",
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
            }
            for m in got
        ]
    }


@_SKIPPED_BY_MOTO
def test_template_deploys_to_moto_and_both_routes_convert_the_same_upload(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    s3, sqs, cfn, lam, iam = (boto3.client(name) for name in ("s3", "sqs", "cloudformation", "lambda", "iam"))
    s3.create_bucket(Bucket="code")
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as z:  # moto checks the object exists; the handler runs here, below
        z.writestr("heicconv/__init__.py", "")
    s3.put_object(Bucket="code", Key="heicconv-lambda.zip", Body=package.getvalue())
    s3.create_bucket(Bucket="photos")  # an existing bucket, which both routes' stacks share

    serverless = _deploy(cfn, "heicconv", CreateInputBucket="false", ReservedConcurrency="20", BatchJobsBucket="jobs")
    function = lam.get_function(FunctionName=serverless["FunctionArn"])
    config = function["Configuration"]
    assert (config["Runtime"], config["Handler"]) == ("python3.12", "heicconv.aws_lambda.handler")
    assert (config["MemorySize"], config["Timeout"]) == (1024, 60)
    assert function["Concurrency"]["ReservedConcurrentExecutions"] == 20
    # (moto keeps a Number parameter's type; Lambda's API answers strings.)
    environment = {key: str(value) for key, value in config["Environment"]["Variables"].items()}
    assert environment == {
        "HEICCONV_BACKEND": "pillow",
        "HEICCONV_LAMBDA_FORMAT": "jpeg",
        "HEICCONV_LAMBDA_OUTPUT_BUCKET": "photos",
        "HEICCONV_LAMBDA_OUTPUT_PREFIX": "converted/",
        "HEICCONV_QUALITY": "85",
        "HEICCONV_METADATA": "strip-location",
    }
    mappings = lam.list_event_source_mappings(EventSourceArn=serverless["QueueArn"])["EventSourceMappings"]
    (mapping,) = mappings
    assert mapping["FunctionArn"] == serverless["FunctionArn"] and mapping["BatchSize"] == 5
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # The test plays the Lambda service below (moto would run the function in a Docker container of its own).
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    queue = sqs.get_queue_attributes(QueueUrl=serverless["QueueUrl"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(queue["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 3 and redrive["deadLetterTargetArn"].endswith(
        serverless["DeadLetterQueueUrl"].rsplit("/", 1)[1]
    )
    assert int(queue["VisibilityTimeout"]) >= 6 * config["Timeout"]  # AWS's advice for a queue that triggers Lambda
    role = iam.get_role(RoleName=serverless["BatchOperationsRoleArn"].rsplit("/", 1)[1])["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "batchoperations.s3.amazonaws.com"
    }

    # The serverless route: S3's own notification (the stack's NotificationConfiguration output) -> the queue ->
    # the real handler, configured as the deployed function is.
    s3.put_bucket_notification_configuration(
        Bucket="photos", NotificationConfiguration=json.loads(serverless["NotificationConfiguration"])
    )
    heic = make_heic(size=(64, 48))
    s3.put_object(Bucket="photos", Key="uploads/IMG 0001.HEIC", Body=heic)
    s3.put_object(Bucket="photos", Key="elsewhere/IMG 0002.HEIC", Body=heic)  # outside the prefix: no message
    event = _lambda_event(sqs, serverless["QueueUrl"])
    # S3's s3:TestEvent, sent when the notification is configured, and the upload: not the key outside the prefix.
    assert sorted(json.loads(r["body"]).get("Event", "upload") for r in event["Records"]) == ["s3:TestEvent", "upload"]
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    from heicconv import config as heicconv_config
    from heicconv.aws_lambda import handler

    heicconv_config.reset()
    answer = handler(event)
    assert answer["batchItemFailures"] == [], answer
    assert [r["status"] for r in answer["results"] if r.get("key")] == ["converted"], answer
    by_lambda = s3.get_object(Bucket="photos", Key="converted/uploads/IMG 0001.jpg")
    assert by_lambda["ContentType"] == "image/jpeg"
    lambda_bytes = by_lambda["Body"].read()
    s3.delete_object(Bucket="photos", Key="converted/uploads/IMG 0001.jpg")

    # The container route: a second stack makes its queue and the pods' policy (no function); pointing the bucket's
    # notifications at that queue is the whole switch, and the real worker writes the same object, byte for byte.
    container = _deploy(cfn, "heicconv-container", Route="container", CreateInputBucket="false")
    assert "FunctionArn" not in container and container["WorkerPolicyArn"].startswith("arn:aws:iam::")
    resources = cfn.list_stack_resources(StackName="heicconv-container")["StackResourceSummaries"]
    assert not [r for r in resources if r["ResourceType"].startswith("AWS::Lambda::")]
    s3.put_bucket_notification_configuration(
        Bucket="photos", NotificationConfiguration=json.loads(container["NotificationConfiguration"])
    )
    s3.put_object(Bucket="photos", Key="uploads/IMG 0001.HEIC", Body=heic)
    code, err = finish(worker(container["QueueUrl"], "--drain", env=environment))
    assert code == 0, err
    by_worker = s3.get_object(Bucket="photos", Key="converted/uploads/IMG 0001.jpg")
    assert by_worker["ContentType"] == "image/jpeg" and by_worker["Body"].read() == lambda_bytes
    assert "Messages" not in sqs.receive_message(QueueUrl=serverless["QueueUrl"], WaitTimeSeconds=0)


@_SKIPPED_BY_MOTO
def test_template_deploys_the_image_variant_to_moto(aws: str) -> None:
    import boto3

    cfn, lam = boto3.client("cloudformation"), boto3.client("lambda")
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/heicconv:lambda"
    outputs = _deploy(
        cfn,
        "heicconv-image",
        InputBucketName="photos-image",
        PackageType="Image",
        ImageUri=image,
        Backend="vips",
        Architecture="x86_64",
        OutputBucketName="photos-web",
        MaxSize="2048",
    )
    config = lam.get_function(FunctionName=outputs["FunctionArn"])
    # moto's CloudFormation passes Code on (and drops PackageType and Architectures; the template's lines for
    # them are checked below): an image has no runtime or handler of Lambda's.
    assert not config["Configuration"].get("Runtime") and not config["Configuration"].get("Handler")
    function = _template()["Resources"]["Function"]["Properties"]
    assert function["PackageType"] == {"Ref": "PackageType"} and function["Architectures"] == [{"Ref": "Architecture"}]
    assert function["Code"]["Fn::If"][2] == {"ImageUri": {"Ref": "ImageUri"}}
    variables = config["Configuration"]["Environment"]["Variables"]
    assert (variables["HEICCONV_BACKEND"], variables["HEICCONV_LAMBDA_OUTPUT_BUCKET"]) == ("vips", "photos-web")
    assert variables["HEICCONV_MAX_SIZE"] == "2048"
    assert "Concurrency" not in lam.get_function(FunctionName=outputs["FunctionArn"])  # -1: none reserved


# -- the Kubernetes manifests ----------------------------------------------------------------------------


def _manifests() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = kustomization["resources"]
    on_disk = sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk  # `kubectl apply -k` and `-f` apply the same objects
    return {name: yaml.safe_load((KUBERNETES / name).read_text(encoding="utf-8")) for name in listed}


def _by_kind(kind: str, name: str) -> dict[str, Any]:
    (found,) = [m for m in _manifests().values() if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def _kubernetes_validate(manifest: dict[str, Any]) -> None:
    validate = require_module("kubernetes_validate", "deploy")
    validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_manifests_match_the_kubernetes_schemas() -> None:
    kinds = []
    for manifest in _manifests().values():
        if manifest["apiVersion"].startswith("keda.sh/"):
            continue
        _kubernetes_validate(manifest)
        kinds.append(manifest["kind"])
    service = ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    assert sorted(kinds) == sorted(["ServiceAccount", "ConfigMap", *service, "Deployment", "PodDisruptionBudget"])


def test_the_kubernetes_schema_check_can_fail() -> None:
    validate = require_module("kubernetes_validate", "deploy")
    deployment = copy.deepcopy(_by_kind("Deployment", "heicconv-worker"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}  # a typo: an unknown field
    with pytest.raises(validate.ValidationError):
        _kubernetes_validate(deployment)


def _strict(schema: Any) -> Any:
    """KEDA's schema with unknown fields refused, as `kubectl apply --validate=strict` refuses them."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        open_ended = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
        if schema.get("type") == "object" and "properties" in schema and not open_ended:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _keda_validate(manifest: dict[str, Any]) -> None:
    import jsonschema

    schemas = json.loads(KEDA_SCHEMAS.read_text(encoding="utf-8"))["crds"]
    schema = _strict(schemas[f"{manifest['apiVersion']}/{manifest['kind']}"])
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
    jsonschema.validate(body, schema)


# The aws-sqs-queue scaler's trigger metadata keys (kedacore/keda v2.20.2, pkg/scalers/aws_sqs_queue_scaler.go);
# the CRD types metadata as a map of strings, so a misspelt key would pass its schema and be ignored.
SQS_SCALER_KEYS = {
    "queueURL", "queueLength", "activationQueueLength", "awsRegion", "awsEndpoint", "scaleOnInFlight",
    "scaleOnDelayed", "identityOwner",
}  # fmt: skip


def test_keda_objects_match_the_crd_schema_and_the_sqs_scaler() -> None:
    scaled = _by_kind("ScaledObject", "heicconv-worker")
    _keda_validate(scaled)
    _keda_validate(_by_kind("TriggerAuthentication", "heicconv-aws"))
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == _by_kind("Deployment", "heicconv-worker")["metadata"]["name"]
    assert spec["minReplicaCount"] == 0  # nothing runs while the queue is empty
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["authenticationRef"]["name"] == "heicconv-aws"
    keys = {k.removesuffix("FromEnv") for k in trigger["metadata"]}
    assert keys <= SQS_SCALER_KEYS, keys - SQS_SCALER_KEYS
    # queueURLFromEnv names a variable of the scaled container: the worker's own queue.
    assert trigger["metadata"]["queueURLFromEnv"] == "HEICCONV_WORKER_QUEUE"
    assert "HEICCONV_WORKER_QUEUE" in _by_kind("ConfigMap", "heicconv")["data"]
    assert trigger["metadata"]["awsRegion"] == _by_kind("ConfigMap", "heicconv")["data"]["AWS_REGION"]


def test_the_keda_schema_check_can_fail() -> None:
    import jsonschema

    scaled = copy.deepcopy(_by_kind("ScaledObject", "heicconv-worker"))
    scaled["spec"]["minReplicas"] = 0  # the HPA's name for it, not KEDA's
    with pytest.raises(jsonschema.ValidationError):
        _keda_validate(scaled)
    del scaled["spec"]["minReplicas"]
    scaled["spec"]["triggers"][0]["authenticationRef"] = {}  # name is required
    with pytest.raises(jsonschema.ValidationError):
        _keda_validate(scaled)


def _container(deployment: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    pod = _by_kind("Deployment", deployment)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    return pod, container, {**_by_kind("ConfigMap", "heicconv")["data"], **env}


def _mib(quantity: str) -> float:
    units = {"Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


@pytest.mark.parametrize("deployment", ["heicconv-service", "heicconv-worker"])
def test_pods_run_unprivileged_on_a_read_only_root(deployment: str) -> None:
    pod, container, _ = _container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (10001, 10001)  # the images'
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_service_probes_and_worker_stop() -> None:
    _, service, _ = _container("heicconv-service")
    assert service["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert service["livenessProbe"]["httpGet"]["path"] == "/health"
    assert _by_kind("HorizontalPodAutoscaler", "heicconv-service")["spec"]["scaleTargetRef"]["name"] == (
        "heicconv-service"
    )
    pod, worker_container, worker_env = _container("heicconv-worker")
    assert worker_container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert "readinessProbe" not in worker_container  # a worker takes no traffic
    # After SIGTERM the worker waits stop_timeout for conversions and a receive returns within wait_time.
    stop = max(float(worker_env["HEICCONV_WORKER_STOP_TIMEOUT"]), float(worker_env["HEICCONV_WORKER_WAIT_TIME"]))
    assert pod["terminationGracePeriodSeconds"] >= stop + 10
    assert "replicas" not in _by_kind("Deployment", "heicconv-worker")["spec"]  # KEDA owns the count


# -- sizes from measurement ------------------------------------------------------------------------------


def _measured_peak_mb() -> float:
    """The largest peak RSS in docs/deploy.md's table of the `heicconv bench` run the sizes come from."""
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    table = text.split("<!-- bench-sizes -->")[1]
    peaks = [float(m) for m in re.findall(r"^\|[^|]+\|[^|]+\|\s*pillow\s*\|[^|]+\|\s*([\d.]+)\s*\|", table, re.M)]
    assert peaks, table[:500]
    return max(peaks)


def test_sizes_follow_the_measured_peak() -> None:
    peak = _measured_peak_mb()
    template = _template()
    assert template["Parameters"]["MemorySize"]["Default"] >= 2 * peak  # the handler converts in its own process
    _, worker_container, worker_env = _container("heicconv-worker")
    cap = float(worker_env["HEICCONV_WORKER_MEMORY_MB"])
    limits = worker_container["resources"]
    # One conversion process up to its cap, beside the worker process itself (about 100 MB with boto3).
    assert peak < cap and cap + 100 <= _mib(limits["limits"]["memory"])
    assert _mib(limits["requests"]["memory"]) >= peak + 100
    _, service, service_env = _container("heicconv-service")
    workers, cap = int(service_env["HEICCONV_SERVER_WORKERS"]), float(service_env["HEICCONV_SERVER_MEMORY_MB"])
    bodies = int(service_env["HEICCONV_SERVER_UPLOADS"]) * int(service_env["HEICCONV_SERVER_MAX_BODY_BYTES"]) / 2**20
    assert peak < cap and workers * cap + bodies + 100 <= _mib(service["resources"]["limits"]["memory"])
    assert float(service["resources"]["requests"]["cpu"]) == workers  # one CPU per conversion at once


# -- the walkthrough -------------------------------------------------------------------------------------


def _shell_commands() -> list[str]:
    """docs/deploy.md's ```sh commands, continuation lines joined."""
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [c.strip() for block in blocks for c in block.replace("\\\n", " ").splitlines() if c.strip()]


def test_walkthrough_commands_name_what_the_files_define() -> None:
    import shlex

    template = _template()
    parameters, outputs = template["Parameters"], template["Outputs"]
    commands = _shell_commands()
    overrides = 0
    for command in commands:
        words = shlex.split(command)
        for flag in ("--template-file", "-f", "-k"):
            if flag in words and words[0] in {"aws", "kubectl", "docker"}:
                assert (ROOT / words[words.index(flag) + 1]).exists(), command
        for word in words:
            if word.startswith("file://"):
                assert (ROOT / word.removeprefix("file://")).is_file(), command
        if "--parameter-overrides" in words:
            for pair in words[words.index("--parameter-overrides") + 1 :]:
                key, _, value = pair.partition("=")
                spec = parameters[key]  # a KeyError names a parameter the template does not have
                assert value in [str(v) for v in spec.get("AllowedValues", [value])], pair
                assert re.fullmatch(spec.get("AllowedPattern", ".*"), value), pair
                overrides += 1
        for name in re.findall(r"OutputKey=='(\w+)'", command):
            assert name in outputs, name
    assert overrides >= 8
    # The parameter table names the template's parameters, with their defaults.
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    table = text.split("The parameters you are most likely to change:")[1].split("\n\n")[1]
    for row in table.splitlines()[2:]:
        names, default = (cell.strip() for cell in row.strip("|").split("|")[:2])
        for name in re.findall(r"`(\w+)`", names):
            assert name in parameters, name
        first = default.split()[0].strip("`")
        if names.count("`") == 2 and re.fullmatch(r"-?[\w.]+", first):
            expected = str(parameters[names.strip("`")].get("Default"))
            assert first == expected or (first, expected) == ("none", ""), row
    # The ZIP that the first command builds is the one the next two upload and deploy.
    assert "dist/heicconv-lambda-py312-arm64.zip" in commands[1] and "CodeS3Key=heicconv-lambda-py312-arm64.zip" in (
        " ".join(commands)
    )
    build_script = (ROOT / "docker" / "build_lambda_zip.py").read_text(encoding="utf-8")
    assert "f\"heicconv-lambda{flavour}-py{python.replace('.', '')}-{arch}.zip\"" in build_script
    # The configmap's example queue is the container stack's, as the walkthrough names it.
    queue_name = next(c for c in commands if "Route=container" in c).split("QueueName=")[1].split()[0]
    assert _by_kind("ConfigMap", "heicconv")["data"]["HEICCONV_WORKER_QUEUE"].endswith("/" + queue_name)


def test_compose_matches_the_manifests() -> None:
    # yaml.safe_load resolves the file's anchors and merge keys as Compose does.
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))["services"]
    configmap = _by_kind("ConfigMap", "heicconv")["data"]
    for name in ("service", "worker"):
        service = compose[name]
        settings = {k: v for k, v in service["environment"].items() if k.startswith("HEICCONV_")}
        shared = {k: v for k, v in configmap.items() if k.startswith("HEICCONV_") and k != "HEICCONV_WORKER_QUEUE"}
        assert shared.items() <= settings.items(), name  # the same outputs as on Kubernetes and Lambda
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
    worker = compose["worker"]
    assert (
        worker["environment"]["AWS_DEFAULT_REGION"] == worker["environment"]["AWS_REGION"]
    )  # botocore reads the first
    assert worker["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    queue_name = compose["setup"]["environment"]["HEICCONV_LOCAL_QUEUE"]
    assert worker["environment"]["HEICCONV_WORKER_QUEUE"].endswith("/" + queue_name)
    assert (ROOT / "deploy" / compose["setup"]["command"][1].removeprefix("/deploy/")).is_file()


# -- the ECS task definition -----------------------------------------------------------------------------

ECS_TASK = ROOT / "deploy" / "ecs" / "worker-task-definition.json"


def test_ecs_task_definition_matches_the_api_and_the_manifests() -> None:
    from botocore.session import get_session
    from botocore.validate import ParamValidator

    task = json.loads(ECS_TASK.read_text(encoding="utf-8"))
    shape = get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(task, shape)  # botocore's model of the API: names, types, required keys
    assert not report.has_errors(), report.generate_report()
    broken = copy.deepcopy(task)
    broken["containerDefinitions"][0]["readOnlyRootFilesystem"] = True  # the API spells it readonlyRootFilesystem
    assert ParamValidator().validate(broken, shape).has_errors()
    (container,) = task["containerDefinitions"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    _, _, pod_env = _container("heicconv-worker")
    assert {k: v for k, v in pod_env.items() if k != "HEICCONV_WORKER_QUEUE"}.items() <= env.items()
    assert container["user"] == "10001:10001" and container["readonlyRootFilesystem"] is True
    stop = max(float(env["HEICCONV_WORKER_STOP_TIMEOUT"]), float(env["HEICCONV_WORKER_WAIT_TIME"]))
    assert stop + 10 <= container["stopTimeout"] <= 120  # Fargate's maximum
    assert float(env["HEICCONV_WORKER_MEMORY_MB"]) + 100 <= int(task["memory"])
    assert container["healthCheck"]["command"][-1] == "/usr/local/lib/heicconv/healthcheck.py"


@_SKIPPED_BY_MOTO
def test_ecs_task_definition_registers_in_moto(aws: str) -> None:
    import boto3

    task = json.loads(ECS_TASK.read_text(encoding="utf-8"))
    registered = boto3.client("ecs").register_task_definition(**task)["taskDefinition"]
    assert (registered["family"], registered["status"]) == ("heicconv-worker", "ACTIVE")
    assert registered["containerDefinitions"][0]["stopTimeout"] == 45
