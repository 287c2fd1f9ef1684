"""The raw archive: Firehose converts telemetry to Parquet under the local archive's layout
``archive/site=<site>/asset=<asset>/date=<YYYY-MM-DD>/``, with a Glue table for Athena and
the view ``readings`` over it, whose columns are those of ``plantwatch query``'s
``readings`` view, so one query text runs in both places (``docs/query.md``).

The archive rule (``infra/archive_rules.json``) already puts ``site``, ``asset`` and
``date`` into each record, so dynamic partitioning only reads them (JQ) and the Glue
table finds partitions by projection, without a crawler.
"""

from __future__ import annotations

import base64
import json

from aws_cdk import Aws, Duration, Size
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import DeployConfig
from infra.nag import acknowledge_wildcards, arn_of
from infra.parts import common
from infra.parts.storage import ARCHIVE_PREFIX, Storage

DATABASE = "plantwatch"
TABLE = "readings_raw"
PARTITION_PREFIX = (
    f"{ARCHIVE_PREFIX}site=!{{partitionKeyFromQuery:site}}/"
    "asset=!{partitionKeyFromQuery:asset}/date=!{partitionKeyFromQuery:date}/"
)
COLUMNS = (
    ("sender", "string"),
    ("seq", "bigint"),
    ("samples", "array<struct<ts:bigint,values:map<string,double>>>"),
    ("received_ms", "bigint"),
)
PARTITION_KEYS = (("site", "string"), ("asset", "string"), ("date", "string"))
VIEW = "readings"
VIEW_SQL = (
    "SELECT date_add('millisecond', s.ts, TIMESTAMP '1970-01-01 00:00:00.000') AS ts, "
    "site, asset, v.sensor, v.value, date "
    f'FROM "{DATABASE}"."{TABLE}" '
    "CROSS JOIN UNNEST(samples) AS t(s) "
    'CROSS JOIN UNNEST(s."values") AS v(sensor, value) '
    "WHERE v.value IS NOT NULL"
)
"""The local ``readings`` view's columns over the per-message table (``docs/query.md``)."""
VIEW_COLUMNS = (
    # (name, Trino type in the view definition, Hive type in the Glue columns)
    ("ts", "timestamp(3)", "timestamp"),
    ("site", "varchar", "string"),
    ("asset", "varchar", "string"),
    ("sensor", "varchar", "string"),
    ("value", "double", "double"),
    ("date", "varchar", "string"),
)


def presto_view_text(sql: str, database: str, columns: tuple[tuple[str, str, str], ...]) -> str:
    """An Athena view stored as a Glue table: the view's JSON, base64, in a comment."""
    view = {
        "originalSql": sql,
        "catalog": "awsdatacatalog",
        "schema": database,
        "columns": [{"name": name, "type": kind} for name, kind, _hive in columns],
    }
    encoded = base64.b64encode(json.dumps(view).encode()).decode()
    return f"/* Presto View: {encoded} */"


class Archive(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: DeployConfig, key: kms.IKey, storage: Storage
    ) -> None:
        super().__init__(scope, id)
        bucket = storage.archive
        database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=DATABASE, description="plantwatch raw telemetry archive"
            ),
        )
        location = f"s3://{bucket.bucket_name}/{ARCHIVE_PREFIX}"
        table = glue.CfnTable(
            self,
            "Table",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=DATABASE,
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE,
                table_type="EXTERNAL_TABLE",
                description="One row per telemetry message; UNNEST samples for readings",
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in PARTITION_KEYS
                ],
                parameters={
                    "classification": "parquet",
                    "projection.enabled": "true",
                    "projection.site.type": "injected",
                    "projection.asset.type": "injected",
                    "projection.date.type": "date",
                    "projection.date.format": "yyyy-MM-dd",
                    "projection.date.range": "2020-01-01,NOW",
                    "storage.location.template": location
                    + "site=${site}/asset=${asset}/date=${date}/",
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in COLUMNS],
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                ),
            ),
        )
        table.add_dependency(database)
        view = glue.CfnTable(
            self,
            "ReadingsView",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=DATABASE,
            table_input=glue.CfnTable.TableInputProperty(
                name=VIEW,
                table_type="VIRTUAL_VIEW",
                description="One row per sensor value, as plantwatch query's readings view",
                parameters={"presto_view": "true", "comment": "Presto View"},
                view_original_text=presto_view_text(VIEW_SQL, DATABASE, VIEW_COLUMNS),
                view_expanded_text="/* Presto View */",
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(name=n, type=hive)
                        for n, _t, hive in VIEW_COLUMNS
                    ],
                    serde_info=glue.CfnTable.SerdeInfoProperty(),
                ),
            ),
        )
        view.add_dependency(table)

        log_group = common.log_group(self, "DeliveryLogs", config.log_retention_days)
        log_stream = logs.LogStream(self, "DeliveryLogStream", log_group=log_group)
        role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
        )
        # what Firehose needs for an S3 destination, no deletes (grant_read_write has them)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "s3:GetBucketLocation",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                ],
                resources=[bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{ARCHIVE_PREFIX}*")],
            )
        )
        log_group.grant_write(role)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                resources=[
                    f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}:catalog",
                    f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}:database/{DATABASE}",
                    f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}:table/{DATABASE}/{TABLE}",
                ],
            )
        )
        self.role = role
        acknowledge_wildcards(
            role,
            "Firehose writes generated object keys under the archive/ prefix only.",
            resources=[f"{arn_of(bucket)}/{ARCHIVE_PREFIX}*"],
        )
        stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="CUSTOMER_MANAGED_CMK", key_arn=key.key_arn
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=role.role_arn,
                prefix=PARTITION_PREFIX,
                error_output_prefix=f"{ARCHIVE_PREFIX}errors/!{{firehose:error-output-type}}/!{{timestamp:yyyy-MM-dd}}/",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=int(Duration.minutes(5).to_seconds()),
                    size_in_m_bs=int(Size.mebibytes(128).to_mebibytes()),
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=log_group.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
                dynamic_partitioning_configuration=firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True,
                    retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(
                        duration_in_seconds=300
                    ),
                ),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        firehose.CfnDeliveryStream.ProcessorProperty(
                            type="MetadataExtraction",
                            parameters=[
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="MetadataExtractionQuery",
                                    parameter_value="{site: .site, asset: .asset, date: .date}",
                                ),
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="JsonParsingEngine", parameter_value="JQ-1.6"
                                ),
                            ],
                        )
                    ],
                ),
                data_format_conversion_configuration=firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty(
                    enabled=True,
                    input_format_configuration=firehose.CfnDeliveryStream.InputFormatConfigurationProperty(
                        deserializer=firehose.CfnDeliveryStream.DeserializerProperty(
                            open_x_json_ser_de=firehose.CfnDeliveryStream.OpenXJsonSerDeProperty()
                        )
                    ),
                    output_format_configuration=firehose.CfnDeliveryStream.OutputFormatConfigurationProperty(
                        serializer=firehose.CfnDeliveryStream.SerializerProperty(
                            parquet_ser_de=firehose.CfnDeliveryStream.ParquetSerDeProperty(
                                compression="SNAPPY"
                            )
                        )
                    ),
                    schema_configuration=firehose.CfnDeliveryStream.SchemaConfigurationProperty(
                        catalog_id=Aws.ACCOUNT_ID,
                        database_name=DATABASE,
                        table_name=TABLE,
                        region=Aws.REGION,
                        role_arn=role.role_arn,
                        version_id="LATEST",
                    ),
                ),
            ),
        )
        stream.node.add_dependency(role)
        stream.add_dependency(table)
        self.delivery_stream = stream
        self.delivery_stream_name = stream.ref
        key.grant_encrypt_decrypt(role)

    def delivery_stream_grant(self, grantee: iam.IGrantable) -> None:
        """Let *grantee* (the topic rules' role) put records into the delivery stream."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                resources=[self.delivery_stream.attr_arn],
            )
        )
