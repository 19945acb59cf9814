"""deploy/compose.yaml's one-shot setup: the container route's AWS side, made in the local stand-in.

It deploys deploy/aws/heicconv.yaml with Route=container (the queue, its dead-letter queue and the pods'
policy), as you would on AWS, creates the bucket, and points the bucket's notifications at the queue
with the stack's NotificationConfiguration output: the same steps as docs/deploy.md.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import boto3

TEMPLATE = Path(__file__).resolve().parent.parent / "aws" / "heicconv.yaml"


def main() -> int:
    bucket, queue = os.environ["HEICCONV_LOCAL_BUCKET"], os.environ["HEICCONV_LOCAL_QUEUE"]
    s3, cfn = boto3.client("s3"), boto3.client("cloudformation")
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
    stacks = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    if "heicconv-container" not in stacks:  # the stand-in keeps its state while it runs: setup may run again
        parameters = {"Route": "container", "InputBucketName": bucket, "CreateInputBucket": "false", "QueueName": queue}
        cfn.create_stack(
            StackName="heicconv-container",
            TemplateBody=TEMPLATE.read_text(encoding="utf-8"),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
    (stack,) = cfn.describe_stacks(StackName="heicconv-container")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    notifications = json.loads(outputs["NotificationConfiguration"])
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notifications)
    print(json.dumps({"stack": stack["StackStatus"], "bucket": bucket, "queue": outputs["QueueUrl"]}))
    return 0 if stack["StackStatus"] == "CREATE_COMPLETE" else 1


if __name__ == "__main__":
    sys.exit(main())
